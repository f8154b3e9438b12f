"""Plan-reuse cache: intent classification, parameter stripping, embedders, structured
plans and vector back-ends. Not built yet; nothing is exported.
"""

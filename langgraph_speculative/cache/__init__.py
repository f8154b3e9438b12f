"""Plan-reuse cache (AgentReuse): not built yet; nothing is exported.

Intent classification, parameter stripping, embedders, structured plans and vector
back-ends will live here.
"""

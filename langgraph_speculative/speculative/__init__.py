"""Speculative interaction: the input stream, the interaction format, speculation."""

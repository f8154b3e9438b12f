"""Embeddings and vector indexes (faiss, pgvector) of the plan cache."""

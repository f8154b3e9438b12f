"""The shared core: one call ledger, one executor, and the tools' safety labels."""

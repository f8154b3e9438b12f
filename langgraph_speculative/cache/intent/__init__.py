"""Intent classification: the classifier, induced intents, per-intent thresholds."""

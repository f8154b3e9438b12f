"""Parameter extraction: find a request's key values and strip them."""

"""toolgrad.policies."""

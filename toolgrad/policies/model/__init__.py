"""toolgrad.policies.model."""

"""toolgrad.policies.offline."""

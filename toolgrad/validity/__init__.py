"""toolgrad.validity.checks."""

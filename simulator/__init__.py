"""Deterministic, stateful, spec-faithful mock services built from OpenAPI specs."""

__version__ = "0.1.0"

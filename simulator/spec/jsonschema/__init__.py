"""simulator.spec.jsonschema."""

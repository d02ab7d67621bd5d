"""simulator.containers."""

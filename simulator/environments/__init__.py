"""simulator.environments."""

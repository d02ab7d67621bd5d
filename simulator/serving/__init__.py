"""simulator.serving."""

"""simulator.spec."""

"""simulator.sandboxes."""

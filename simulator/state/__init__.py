"""simulator.state.store."""

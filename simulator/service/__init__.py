"""simulator.service.simulator."""

"""simulator.cli.app."""

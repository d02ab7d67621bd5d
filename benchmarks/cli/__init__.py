"""benchmarks.cli.app."""

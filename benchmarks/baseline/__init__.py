"""benchmarks.baseline."""

"""benchmarks.perf."""

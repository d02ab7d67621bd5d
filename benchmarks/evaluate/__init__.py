"""benchmarks.evaluate.runner."""

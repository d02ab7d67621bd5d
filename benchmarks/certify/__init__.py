"""benchmarks.certify.certificate."""

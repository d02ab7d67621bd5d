"""Certification by re-execution, offline evaluation of tool-using models, and benchmarks."""

__version__ = "0.1.0"

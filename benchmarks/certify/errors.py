"""The errors benchmarks raise on purpose (the CLI prints them as one line and exits 2)."""

from __future__ import annotations


class BenchmarkError(Exception):
    """Root of the errors benchmarks raise on purpose; the CLI prints them and exits 2."""


class DatasetError(BenchmarkError):
    """A dataset file that cannot be read: missing, or a line that is not a valid sample."""

"""Certification by re-execution, offline evaluation of tool-using models, and benchmarks.

The names below are the package's public API: what a program needs to certify a dataset, evaluate a model on it and report, and compare with the DFSDT baseline. They load lazily
(importing ``benchmarks`` costs almost nothing); everything else is internal and may move.
``tests/test_public_api.py`` guards this list.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "certify_file": "benchmarks.certify.certificate",
    "Certificate": "benchmarks.certify.certificate",
    "certificate_bytes": "benchmarks.certify.certificate",
    "read_dataset": "benchmarks.certify.replay",
    "SandboxProvider": "benchmarks.certify.sandboxes",
    "BenchmarkError": "benchmarks.certify.replay",
    "evaluate_dataset": "benchmarks.evaluate.runner",
    "EvalSettings": "benchmarks.evaluate.runner",
    "build_report": "benchmarks.evaluate.report",
    "write_run": "benchmarks.evaluate.report",
    "CompareSettings": "benchmarks.baseline.compare",
    "run_comparison": "benchmarks.baseline.compare",
}

__all__ = [
    "BenchmarkError",
    "Certificate",
    "CompareSettings",
    "EvalSettings",
    "SandboxProvider",
    "__version__",
    "build_report",
    "certificate_bytes",
    "certify_file",
    "evaluate_dataset",
    "read_dataset",
    "run_comparison",
    "write_run",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:
    from .baseline.compare import CompareSettings, run_comparison
    from .certify.certificate import Certificate, certificate_bytes, certify_file
    from .certify.replay import BenchmarkError, read_dataset
    from .certify.sandboxes import SandboxProvider
    from .evaluate.report import build_report, write_run
    from .evaluate.runner import EvalSettings, evaluate_dataset

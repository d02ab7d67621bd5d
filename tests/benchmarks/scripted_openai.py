"""tests/toolgrad/scripted_server.py (a scripted OpenAI-compatible server on 127.0.0.1) for the
benchmarks' tests, loaded by path: test folders are not packages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any


def _load() -> Any:
    path = Path(__file__).resolve().parents[1] / "toolgrad" / "scripted_server.py"
    spec = importlib.util.spec_from_file_location("benchmarks_tests_scripted_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


scripted = _load()

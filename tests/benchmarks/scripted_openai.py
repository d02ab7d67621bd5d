"""tests/toolgrad/scripted_server.py (the scripted OpenAI-compatible server on 127.0.0.1) for the
benchmarks' tests, loaded by path once (test folders are not packages)::

    from scripted_openai import scripted
    with scripted.ScriptedOpenAI() as server: ...
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_NAME = "benchmarks_tests_scripted_server"


def _load() -> ModuleType:
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    path = Path(__file__).resolve().parents[1] / "toolgrad" / "scripted_server.py"
    spec = importlib.util.spec_from_file_location(_NAME, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


scripted = _load()

"""The answer-first (ToolGrad) tool-use data generator.

The names below are the package's public API: what a program needs to generate a dataset (offline or with any OpenAI-compatible model), read it, split and export it. They load lazily
(importing ``toolgrad`` costs almost nothing); everything else is internal and may move.
``tests/test_public_api.py`` guards this list.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "GenerateSettings": "toolgrad.settings",
    "ExportSettings": "toolgrad.settings",
    "ToolgradError": "toolgrad.settings",
    "RunIncomplete": "toolgrad.settings",
    "generate_dataset": "toolgrad.dataset.runner",
    "read_samples": "toolgrad.dataset.lines",
    "export_dataset": "toolgrad.exports.openai",
    "split_file": "toolgrad.exports.split",
    "Sample": "toolgrad.records",
    "RunSummary": "toolgrad.records",
    "Toolbox": "toolgrad.toolbox",
    "Policy": "toolgrad.loop.policy",
    "OfflinePolicy": "toolgrad.policies.offline.policy",
    "LLMPolicy": "toolgrad.policies.model.policy",
    "ChatModel": "toolgrad.backends.base",
    "ModelError": "toolgrad.backends.base",
    "OpenAIChat": "toolgrad.backends.openai",
}

__all__ = [
    "ChatModel",
    "ExportSettings",
    "GenerateSettings",
    "LLMPolicy",
    "ModelError",
    "OfflinePolicy",
    "OpenAIChat",
    "Policy",
    "RunIncomplete",
    "RunSummary",
    "Sample",
    "Toolbox",
    "ToolgradError",
    "__version__",
    "export_dataset",
    "generate_dataset",
    "read_samples",
    "split_file",
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
    from .backends.base import ChatModel, ModelError
    from .backends.openai import OpenAIChat
    from .dataset.lines import read_samples
    from .dataset.runner import generate_dataset
    from .exports.openai import export_dataset
    from .exports.split import split_file
    from .loop.policy import Policy
    from .policies.model.policy import LLMPolicy
    from .policies.offline.policy import OfflinePolicy
    from .records import RunSummary, Sample
    from .settings import ExportSettings, GenerateSettings, RunIncomplete, ToolgradError
    from .toolbox import Toolbox

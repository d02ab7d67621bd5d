"""Deterministic, stateful, spec-faithful mock services built from OpenAPI specs.

The names below are the package's public API: what a program needs to load an environment, simulate requests in-process, serve it, and open sandboxes on it. They load lazily
(importing ``simulator`` costs almost nothing); everything else is internal and may move.
``tests/test_public_api.py`` guards this list.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "load_spec": "simulator.spec.loader",
    "Spec": "simulator.spec.model",
    "Environment": "simulator.environments.environment",
    "load_environment": "simulator.environments.environment",
    "load_environments": "simulator.environments.environment",
    "shipped_environments": "simulator.environments.environment",
    "Simulator": "simulator.service.simulator",
    "SimRequest": "simulator.messages",
    "SimResponse": "simulator.messages",
    "Sandbox": "simulator.sandboxes.protocol",
    "InProcessSandbox": "simulator.sandboxes.inprocess",
    "HTTPSandbox": "simulator.sandboxes.http",
    "running_services": "simulator.sandboxes.backends",
    "build_app": "simulator.serving.asgi",
    "serve": "simulator.serving.server",
    "SimulatorError": "simulator.errors",
    "SpecError": "simulator.errors",
    "UnknownEnvironmentError": "simulator.errors",
}

__all__ = [
    "Environment",
    "HTTPSandbox",
    "InProcessSandbox",
    "Sandbox",
    "SimRequest",
    "SimResponse",
    "Simulator",
    "SimulatorError",
    "Spec",
    "SpecError",
    "UnknownEnvironmentError",
    "__version__",
    "build_app",
    "load_environment",
    "load_environments",
    "load_spec",
    "running_services",
    "serve",
    "shipped_environments",
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
    from .environments.environment import (
        Environment,
        load_environment,
        load_environments,
        shipped_environments,
    )
    from .errors import SimulatorError, SpecError, UnknownEnvironmentError
    from .messages import SimRequest, SimResponse
    from .sandboxes.backends import running_services
    from .sandboxes.http import HTTPSandbox
    from .sandboxes.inprocess import InProcessSandbox
    from .sandboxes.protocol import Sandbox
    from .service.simulator import Simulator
    from .serving.asgi import build_app
    from .serving.server import serve
    from .spec.loader import load_spec
    from .spec.model import Spec

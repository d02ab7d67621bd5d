"""A docker-compose file serving shipped environments from the simulator image (pure rendering).

The output uses the compose file format 3.8 subset that both `docker compose` (v2) and the
python `docker-compose` (v1) accept, and is byte-deterministic for the same arguments: keys
in a fixed order, no timestamps, paths relative to the compose file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from simulator import __version__
from simulator.backends.base import CONTAINER_PORT, HEALTH_PATH, LABEL, LABEL_ENV, Hardening, plan_requests

COMPOSE_VERSION = "3.8"
DEFAULT_PORT_BASE = 8000
LABEL_COMPOSE = "toolgrad.compose"
HEALTH_TEST = [
    "CMD",
    "/opt/venv/bin/python",
    "-c",
    "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("
    f"'http://127.0.0.1:{CONTAINER_PORT}{HEALTH_PATH}', timeout=2).status == 200 else 1)",
]


@dataclass(frozen=True, slots=True)
class ComposePlan:
    """Everything a compose file depends on."""

    envs: tuple[str, ...]
    image: str
    port_base: int = DEFAULT_PORT_BASE
    seed: int = 0
    # directory of a prepared build context, relative to the compose file; None: no build section
    build_context: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()  # the Dockerfile's ARGs (BASE, WHEEL_PYTHON, ...)
    hardening: Hardening = field(default_factory=Hardening)


def _service(env: str, name: str, port: int, plan: ComposePlan) -> dict[str, Any]:
    service: dict[str, Any] = {"image": plan.image}
    if plan.build_context is not None:
        build: dict[str, Any] = {"context": plan.build_context}
        if plan.build_args:
            build["args"] = dict(plan.build_args)
        service["build"] = build
    service["environment"] = {
        "TOOLGRAD_ENV": env, "TOOLGRAD_SEED": str(plan.seed),
        # bound to 0.0.0.0 inside, the control API is closed: set the token when starting the
        # stack, or read the generated one from `docker compose logs`
        "TOOLGRAD_SIM_ADMIN_TOKEN": "${TOOLGRAD_SIM_ADMIN_TOKEN:-}",
        "TOOLGRAD_SIM_ALLOWED_HOSTS": name,
    }
    # Loopback only: a simulator is a test fixture, never a public service.
    service["ports"] = [f"127.0.0.1:{port}:{CONTAINER_PORT}"]
    service["read_only"] = True
    hardening = plan.hardening
    service["tmpfs"] = [f"/tmp:{hardening.tmpfs_options}"]
    service["cap_drop"] = ["ALL"]
    service["security_opt"] = ["no-new-privileges:true"]
    service["mem_limit"] = hardening.mem_limit
    service["pids_limit"] = hardening.pids_limit
    service["cpus"] = hardening.cpus
    service["healthcheck"] = {
        "test": list(HEALTH_TEST),
        "interval": "5s",
        "timeout": "3s",
        "retries": 12,
        "start_period": "10s",
    }
    service["labels"] = {LABEL: "1", LABEL_ENV: name, LABEL_COMPOSE: "1"}
    service["restart"] = "no"
    return service


def compose_document(plan: ComposePlan) -> dict[str, Any]:
    """The compose file as a mapping; one service per environment, named after it."""
    requests = plan_requests(plan.envs, seed=plan.seed, port_base=plan.port_base)
    services = {
        request.name: _service(request.env, request.name, request.host_port or plan.port_base, plan)
        for request in requests
    }
    return {
        "version": COMPOSE_VERSION,
        "services": services,
        "networks": {"default": {"labels": {LABEL: "1"}}},
    }


def render_compose(plan: ComposePlan) -> str:
    """The compose file's text, with a header naming what wrote it and how to use it."""
    header = (
        f"# Written by `toolgrad sim compose` (simulator {__version__}); seed {plan.seed}.\n"
        "# Start: docker compose -f THIS_FILE up -d   (or docker-compose -f THIS_FILE up -d)\n"
        "# Stop:  docker compose -f THIS_FILE down\n"
    )
    body = yaml.safe_dump(compose_document(plan), sort_keys=False, default_flow_style=False, width=1000)
    return header + body


def service_urls(plan: ComposePlan) -> dict[str, str]:
    """Where each service of the plan answers on the host."""
    requests = plan_requests(plan.envs, seed=plan.seed, port_base=plan.port_base)
    return {request.name: f"http://127.0.0.1:{request.host_port}" for request in requests}


def check_envs(envs: Sequence[str], available: Sequence[str]) -> list[str]:
    """The envs that are not shipped (not in ``available``)."""
    return [env for env in envs if env not in set(available)]

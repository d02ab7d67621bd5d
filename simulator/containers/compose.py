"""A docker-compose file serving environments from the simulator image (pure rendering).

Shipped environments are served by name; an environment folder (or a bare spec file's folder)
of the host is mounted read-only into its service (see
:mod:`simulator.sandboxes.backends.mounts`). The output uses the compose file format 3.8 subset
that both `docker compose` (v2) and the python `docker-compose` (v1) accept, and is
byte-deterministic for the same arguments: keys in a fixed order, no timestamps, paths relative
to the compose file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from simulator import __version__
from simulator.sandboxes.backends.base import (
    CONTAINER_PORT,
    HEALTH_PATH,
    LABEL,
    LABEL_ENV,
    BackendError,
    Hardening,
    ServiceRequest,
    plan_requests,
    service_name,
)

if TYPE_CHECKING:  # mounts reads environments (the spec machinery): not at start-up
    from simulator.sandboxes.backends.mounts import EnvMount

COMPOSE_VERSION = "3.8"
DEFAULT_PORT_BASE = 8000
MCP_PORT_OFFSET = 100  # by default the MCP endpoint of service i is published on PORT_BASE + 100 + i
MCP_SUFFIX = "-mcp"
LABEL_COMPOSE = "toolgrad.compose"
HEALTH_TEST = [
    "CMD",
    "/opt/venv/bin/python",
    "-c",
    "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("
    f"'http://127.0.0.1:{CONTAINER_PORT}{HEALTH_PATH}', timeout=2).status == 200 else 1)",
]


@dataclass(frozen=True, slots=True)
class ComposeMount:
    """An environment served from a host folder: the folder as the compose file writes it
    (relative to the file where possible), where the container sees it (read-only) and what
    ``TOOLGRAD_ENV`` names there."""

    source: str
    target: str
    toolgrad_env: str


def compose_mount(mount: EnvMount, compose_dir: Path) -> ComposeMount:
    """``mount`` as written in a compose file in ``compose_dir``: the host folder relative to it
    (``./my-env``, ``../apis/my-env``) unless the two share nothing below ``/`` (then absolute)."""
    source, here = mount.source.resolve(), compose_dir.resolve()
    if os.path.commonpath([source, here]) == source.anchor:
        written = source.as_posix()
    else:
        relative = Path(os.path.relpath(source, here)).as_posix()
        written = relative if relative.startswith("..") else f"./{relative}".removesuffix("/.")
    return ComposeMount(written, mount.target, mount.toolgrad_env)


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
    mcp: bool = False  # also an MCP (streamable HTTP) service per environment, named <service>-mcp
    mcp_port_base: int | None = None  # None: port_base + MCP_PORT_OFFSET
    mounts: tuple[tuple[str, ComposeMount], ...] = ()  # env (as in ``envs``) -> its mounted folder

    def first_mcp_port(self) -> int:
        """Where the MCP service of environment 0 is published (the others follow)."""
        return self.port_base + MCP_PORT_OFFSET if self.mcp_port_base is None else self.mcp_port_base


def _served(env: str, plan: ComposePlan) -> str:
    """What the container serves for ``env``: its name, or the path of its mounted folder or spec."""
    mount = dict(plan.mounts).get(env)
    return env if mount is None else mount.toolgrad_env


def _service(env: str, name: str, port: int, plan: ComposePlan) -> dict[str, Any]:
    service: dict[str, Any] = {"image": plan.image}
    if plan.build_context is not None:
        build: dict[str, Any] = {"context": plan.build_context}
        if plan.build_args:
            build["args"] = dict(plan.build_args)
        service["build"] = build
    service["environment"] = {
        "TOOLGRAD_ENV": _served(env, plan), "TOOLGRAD_SEED": str(plan.seed),
        # bound to 0.0.0.0 inside, the control API is closed: set the token when starting the
        # stack, or read the generated one from `docker compose logs`
        "TOOLGRAD_SIM_ADMIN_TOKEN": "${TOOLGRAD_SIM_ADMIN_TOKEN:-}",
        "TOOLGRAD_SIM_ALLOWED_HOSTS": name,
    }
    # Loopback only: a simulator is a test fixture, never a public service.
    service["ports"] = [f"127.0.0.1:{port}:{CONTAINER_PORT}"]
    mount = dict(plan.mounts).get(env)
    if mount is not None:
        service["volumes"] = [f"{mount.source}:{mount.target}:ro"]
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


def _mcp_service(env: str, name: str, port: int, plan: ComposePlan) -> dict[str, Any]:
    """The environment served by `toolgrad sim mcp` over streamable HTTP (at /mcp), from the same
    image; its own simulator, so its sessions are apart from the HTTP service's."""
    service = _service(env, name, port, plan)
    command = ["toolgrad", "sim", "mcp", _served(env, plan), "--transport", "http", "--host", "0.0.0.0",
               "--port", str(CONTAINER_PORT), "--seed", str(plan.seed)]  # fmt: skip
    return {"image": service.pop("image"), **({"build": service.pop("build")} if "build" in service else {}),
            "entrypoint": command, **service}


def compose_document(plan: ComposePlan) -> dict[str, Any]:
    """The compose file as a mapping; one service per environment, named after it (and with
    ``plan.mcp`` one more, ``<name>-mcp``, serving it over MCP)."""
    requests = plan_requests(plan.envs, seed=plan.seed, port_base=plan.port_base)
    services = {
        request.name: _service(request.env, request.name, request.host_port or plan.port_base, plan)
        for request in requests
    }
    if plan.mcp:
        for i, request in enumerate(_mcp_requests(plan)):
            name = f"{request.name}{MCP_SUFFIX}"
            services[name] = _mcp_service(request.env, name, plan.first_mcp_port() + i, plan)
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
    if plan.mounts:
        header += "# Mounted read-only (host folder, relative to this file -> container path):\n"
        header += "".join(f"#   {service_name(env)}: {m.source} -> {m.target}\n" for env, m in plan.mounts)
    body = yaml.safe_dump(compose_document(plan), sort_keys=False, default_flow_style=False, width=1000)
    return header + body


def service_urls(plan: ComposePlan) -> dict[str, str]:
    """Where each service of the plan answers on the host (an MCP service: its /mcp endpoint)."""
    requests = plan_requests(plan.envs, seed=plan.seed, port_base=plan.port_base)
    urls = {request.name: f"http://127.0.0.1:{request.host_port}" for request in requests}
    if plan.mcp:
        for i, request in enumerate(_mcp_requests(plan)):
            urls[f"{request.name}{MCP_SUFFIX}"] = f"http://127.0.0.1:{plan.first_mcp_port() + i}/mcp"
    return urls


def _mcp_requests(plan: ComposePlan) -> list[ServiceRequest]:
    """The plan's environments, checked for room for their MCP ports apart from the HTTP ones."""
    requests = plan_requests(plan.envs, seed=plan.seed, port_base=plan.first_mcp_port())
    count = len(requests)
    if plan.first_mcp_port() < plan.port_base + count and plan.port_base < plan.first_mcp_port() + count:
        raise BackendError(f"MCP ports {plan.first_mcp_port()}-{plan.first_mcp_port() + count - 1} overlap the services' "
                           f"ports {plan.port_base}-{plan.port_base + count - 1}: choose another --mcp-port-base")
    return requests


"""What every backend shares: the service handle, the events, the errors and the backend protocol.

A *backend* runs simulated environments as HTTP services (a local process, a container) and
hands back :class:`ServiceHandle` values that tell a caller where to reach each service. Nothing
here touches a socket, a process or the docker SDK.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from simulator import __version__
from simulator.errors import SimulatorError

HEALTH_PATH = "/_sim/health"
CONTAINER_PORT = 8000
LABEL = "toolgrad.sim"  # every container we start carries LABEL=1, so `down` finds it without the ledger
LABEL_ENV = "toolgrad.env"
LOG_TAIL_LINES = 20
IMAGE_REPOSITORY = "toolgrad-sim"


def default_image_tag() -> str:
    """``toolgrad-sim:<simulator version>``: the image `toolgrad sim image` builds by default."""
    return f"{IMAGE_REPOSITORY}:{__version__}"


# --- errors ------------------------------------------------------------------------------------


class BackendError(SimulatorError):
    """A service could not be started, reached or stopped."""


class EngineUnavailableError(BackendError):
    """The Docker engine cannot be reached (not installed, not running, wrong DOCKER_HOST)."""


class ImageMissingError(BackendError):
    """The simulator image is not present in the engine."""


class PortInUseError(BackendError):
    """A host port asked for is already taken by another process."""

    def __init__(self, service: str, port: int) -> None:
        self.service = service
        self.port = port
        super().__init__(
            f"service {service!r}: port 127.0.0.1:{port} is already in use"
            "\n  fix: stop what listens there, pick another --port-base, or leave --port-base out to use free ports"
        )


class ServiceStartError(BackendError):
    """A service exited or never became healthy; carries its name and the last lines of its log."""

    def __init__(self, service: str, reason: str, log_tail: Sequence[str] = ()) -> None:
        self.service = service
        self.reason = reason
        self.log_tail = list(log_tail)
        text = f"service {service!r} failed to start: {reason}"
        if self.log_tail:
            text += "\n  last log lines:\n" + "\n".join(f"    | {line}" for line in self.log_tail)
        else:
            text += "\n  (it wrote no log)"
        super().__init__(text)


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hardening:
    """Resource limits and privileges of every simulator container (compose and the docker backend).

    Besides these, containers always drop every capability, may not gain privileges
    (``no-new-privileges``), run read-only as uid 10001 and publish on 127.0.0.1 only."""

    mem_limit: str = "1g"  # docker's units: 512m, 1g
    pids_limit: int = 256
    cpus: float = 1.0
    tmpfs_size: str = "64m"  # the only writable path, /tmp

    @property
    def tmpfs_options(self) -> str:
        return f"rw,nosuid,nodev,noexec,size={self.tmpfs_size}"



@dataclass(frozen=True, slots=True)
class ServiceHandle:
    """Where one running environment answers. ``ident`` is a pid (local) or a container id (docker);
    ``admin_token`` is what its control API needs ("" when it is open: a loopback-bound server)."""

    name: str
    base_url: str
    backend: str
    ident: str
    admin_token: str = field(default="", repr=False)

    def to_json(self) -> dict[str, str]:
        out = {"name": self.name, "base_url": self.base_url, "backend": self.backend, "ident": self.ident}
        return out | ({"admin_token": self.admin_token} if self.admin_token else {})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServiceHandle:
        return cls(
            name=str(data["name"]),
            base_url=str(data["base_url"]),
            backend=str(data["backend"]),
            ident=str(data["ident"]),
            admin_token=str(data.get("admin_token", "")),
        )


# unrecorded: running and ours, but not in the ledger; unreachable: its engine does not answer
ServiceState = Literal["healthy", "unhealthy", "exited", "missing", "unrecorded", "unreachable"]


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    handle: ServiceHandle
    state: ServiceState
    detail: str = ""


EventKind = Literal["starting", "healthy", "failed", "stopping", "stopped", "cleanup"]


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    """What a backend reports while it works; the CLI prints these, libraries may log or ignore them."""

    kind: EventKind
    service: str
    backend: str
    detail: str = ""


EventHandler = Callable[[ServiceEvent], None]


def ignore_event(event: ServiceEvent) -> None:
    """The default event handler."""


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """One service to start: an environment, its seed and, when fixed, its host port."""

    env: str
    seed: int | None = 0  # None: the environment's own seed
    host_port: int | None = None

    @property
    def name(self) -> str:
        return service_name(self.env)


class Backend(Protocol):
    """Starts and stops services; implementations live in one module each (local, docker)."""

    name: str

    def start(
        self, requests: Sequence[ServiceRequest], *, timeout: float, on_event: EventHandler
    ) -> list[ServiceHandle]:
        """Start every request and wait until each answers its health check.

        All-or-nothing: on any failure every service started by this call is stopped before
        the error propagates.
        """
        ...

    def stop(self, handles: Sequence[ServiceHandle], *, on_event: EventHandler) -> None:
        """Stop the services; ones already gone are skipped silently."""
        ...

    def status(self, handles: Sequence[ServiceHandle]) -> list[ServiceStatus]: ...

    def orphans(self) -> list[ServiceHandle]:
        """Services of this backend that are running but that no caller may know of."""
        ...


# --- small pure helpers --------------------------------------------------------------------------


_NAME_RE = re.compile(r"[^a-z0-9_.-]+")


def service_name(env: str) -> str:
    """A name usable for a compose service and a container: the env's last path part (a folder's
    name, a spec file's stem; ``.`` is the current folder's name), lower case."""
    tail = env.rstrip("/").rsplit("/", 1)[-1]
    if tail in ("", ".", ".."):
        tail = Path(env).resolve().name
    for suffix in (".yaml", ".yml", ".json"):
        if tail.endswith(suffix):
            tail = tail[: -len(suffix)]
    name = _NAME_RE.sub("-", tail.lower()).strip("-._")
    return name or "env"


def plan_requests(envs: Sequence[str], *, seed: int | None, port_base: int | None) -> list[ServiceRequest]:
    """One request per env, ports ``port_base + i`` when a base is given; names must be unique."""
    if not envs:
        raise BackendError("no environment given: name at least one (e.g. petstore)")
    requests = [
        ServiceRequest(env=env, seed=seed, host_port=None if port_base is None else port_base + i)
        for i, env in enumerate(envs)
    ]
    seen: dict[str, str] = {}
    for request in requests:
        if request.name in seen:
            raise BackendError(
                f"environments {seen[request.name]!r} and {request.env!r} would both be served as "
                f"{request.name!r}: name each environment once"
            )
        seen[request.name] = request.env
    if port_base is not None and not 0 < port_base <= 65535 - len(envs):
        raise BackendError(f"--port-base {port_base} leaves no room for {len(envs)} ports")
    return requests


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port right now (a bind test, not a reservation)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR so a closed connection in TIME_WAIT does not count as taken (servers set it too)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel reports free now; another process may still take it before we do."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tail_lines(text: str, limit: int = LOG_TAIL_LINES) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[-limit:]

"""The docker backend: each environment is a container of the simulator image, on 127.0.0.1.

Containers run with a read-only root filesystem and a small tmpfs on /tmp, publish port 8000
on the host's loopback only, and carry the label ``toolgrad.sim=1`` (CI teardown removes all
of those); detached ones also carry their ledger's key, so ``toolgrad sim down`` finds them
without the ledger file. A container that fails to start is removed
after its last log lines have been read into the error.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from collections.abc import Sequence
from typing import Any

import docker.errors
import requests
from docker.client import DockerClient, from_env

from .base import (
    CONTAINER_PORT,
    LABEL,
    LABEL_ENV,
    LOG_TAIL_LINES,
    EngineUnavailableError,
    EventHandler,
    Hardening,
    ImageMissingError,
    PortInUseError,
    ServiceEvent,
    ServiceHandle,
    ServiceRequest,
    ServiceStartError,
    ServiceStatus,
    default_image_tag,
    free_port,
    port_is_free,
    tail_lines,
)
from .health import PendingService, probe, wait_until_healthy
from .ledger import ledger_key
from .mounts import EnvMount, env_mount, image_environments

NAME = "docker"
ADMIN_TOKEN_ENV = "TOOLGRAD_SIM_ADMIN_TOKEN"
HOST = "127.0.0.1"
LABEL_BACKEND = "toolgrad.backend"
LABEL_LEDGER = "toolgrad.ledger"  # on detached containers: the ledger_key() of the ledger recording them
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
STOP_GRACE_SECONDS = 3
AUTO_PORT_TRIES = 3
HARDENING = Hardening()
_PORT_TAKEN_HINTS = ("port is already allocated", "address already in use")


def connect(*, timeout: int = 60) -> DockerClient:
    """A client for the engine named by the environment (DOCKER_HOST, ...), checked with a ping."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise EngineUnavailableError(
            f"cannot reach the Docker engine at {where}: {_first_line(exc)}"
            "\n  fix: start the engine (CI: `bash .ci/docker-setup.sh`), check DOCKER_HOST, "
            "or use the local backend (--backend local)"
        ) from exc
    return client


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _logs(container: Any, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        raw = container.logs(stdout=True, stderr=True, tail=lines)
    except (docker.errors.DockerException, requests.RequestException):
        return []
    return tail_lines(raw.decode("utf-8", "replace"), lines)


def _remove(container: Any) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        # APIError: not running (never started, already exited); the remove below still works.
        with contextlib.suppress(docker.errors.APIError):
            container.stop(timeout=STOP_GRACE_SECONDS)
        container.remove(force=True, v=True)


class DockerBackend:
    """Start containers of ``image`` through the docker SDK."""

    name = NAME

    def __init__(
        self, *, image: str | None = None, detach: bool = False, client: DockerClient | None = None
    ) -> None:
        self.image = image or default_image_tag()
        self.detach = detach
        self._client = client

    @property
    def client(self) -> DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    def ensure_image(self) -> None:
        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise ImageMissingError(
                f"image {self.image} is not in the Docker engine"
                "\n  fix: build it with `toolgrad sim image` (CI: `bash .ci/docker-setup.sh`)"
            ) from None

    # -- starting ----------------------------------------------------------------------------

    def start(
        self, requests: Sequence[ServiceRequest], *, timeout: float, on_event: EventHandler
    ) -> list[ServiceHandle]:
        self.ensure_image()
        # before any container starts: a folder or spec of the host is mounted read-only
        shipped = image_environments()
        mounts = {request.env: env_mount(request.env, shipped, strict=False) for request in requests}
        created: list[Any] = []
        handles: list[ServiceHandle] = []
        try:
            for request in requests:
                container, handle = self._run(request, mounts[request.env], created, on_event)
                handles.append(handle)
                failure = wait_until_healthy(
                    [
                        PendingService(
                            handle.name, handle.base_url, functools.partial(_exit_reason, container)
                        )
                    ],
                    timeout=timeout,
                )
                if failure is not None:
                    on_event(ServiceEvent("failed", handle.name, NAME, failure.reason))
                    raise ServiceStartError(handle.name, failure.reason, _logs(container))
                on_event(ServiceEvent("healthy", handle.name, NAME, handle.base_url))
        except BaseException:
            for container in reversed(created):
                on_event(
                    ServiceEvent("cleanup", container.labels.get(LABEL_ENV, "?"), NAME, container.short_id)
                )
                _remove(container)
            raise
        return handles

    def _run(
        self, request: ServiceRequest, mount: EnvMount | None, created: list[Any], on_event: EventHandler
    ) -> tuple[Any, ServiceHandle]:
        if request.host_port is not None:
            if not port_is_free(request.host_port, HOST):
                raise PortInUseError(request.name, request.host_port)
            return self._run_on(request, mount, request.host_port, created, on_event)
        # A concrete port, not docker's ephemeral one: docker picks a new ephemeral port on every
        # restart, which would leave the handle's URL stale. Retry if another process wins a race.
        for attempt in range(AUTO_PORT_TRIES):
            port = free_port(HOST)
            try:
                return self._run_on(request, mount, port, created, on_event)
            except PortInUseError:
                if attempt + 1 == AUTO_PORT_TRIES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _run_on(
        self, request: ServiceRequest, mount: EnvMount | None, port: int, created: list[Any], on_event: EventHandler
    ) -> tuple[Any, ServiceHandle]:
        mounted = f" ({mount.source} mounted read-only at {mount.target})" if mount else ""
        on_event(ServiceEvent("starting", request.name, NAME,
                              f"{request.env} from {self.image} on {HOST}:{port}{mounted}"))
        # the server binds 0.0.0.0 inside the container, so its control API is closed: give it a token
        token = os.environ.get(ADMIN_TOKEN_ENV) or secrets.token_urlsafe(32)
        environment = {"TOOLGRAD_ENV": mount.toolgrad_env if mount else request.env, ADMIN_TOKEN_ENV: token}
        if request.seed is not None:
            environment["TOOLGRAD_SEED"] = str(request.seed)
        container = self.client.containers.create(
            self.image,
            name=f"toolgrad-sim-{request.name}-{port}",
            environment=environment,
            ports={f"{CONTAINER_PORT}/tcp": (HOST, port)},
            volumes={str(mount.source): {"bind": mount.target, "mode": "ro"}} if mount else None,
            labels={LABEL: "1", LABEL_ENV: request.name, LABEL_BACKEND: NAME}
            | ({LABEL_LEDGER: ledger_key()} if self.detach else {}),
            read_only=True,
            tmpfs={"/tmp": HARDENING.tmpfs_options},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            mem_limit=HARDENING.mem_limit,
            pids_limit=HARDENING.pids_limit,
            nano_cpus=int(HARDENING.cpus * 1e9),
            detach=True,
        )
        created.append(container)
        try:
            container.start()
        except docker.errors.APIError as exc:
            if any(hint in str(exc).lower() for hint in _PORT_TAKEN_HINTS):
                created.remove(container)
                _remove(container)
                raise PortInUseError(request.name, port) from exc
            raise ServiceStartError(request.name, _first_line(exc), _logs(container)) from exc
        return container, ServiceHandle(request.name, f"http://{HOST}:{port}", NAME, container.id, token)

    # -- stopping ----------------------------------------------------------------------------

    def stop(self, handles: Sequence[ServiceHandle], *, on_event: EventHandler) -> None:
        for handle in handles:
            try:
                container = self.client.containers.get(handle.ident)
            except docker.errors.NotFound:
                on_event(ServiceEvent("stopped", handle.name, NAME, "already gone"))
                continue
            on_event(ServiceEvent("stopping", handle.name, NAME, container.short_id))
            _remove(container)
            on_event(ServiceEvent("stopped", handle.name, NAME, container.short_id))

    # -- looking -----------------------------------------------------------------------------

    def status(self, handles: Sequence[ServiceHandle]) -> list[ServiceStatus]:
        result: list[ServiceStatus] = []
        for handle in handles:
            try:
                container = self.client.containers.get(handle.ident)
            except docker.errors.NotFound:
                result.append(ServiceStatus(handle, "missing", "container is gone"))
                continue
            reason = _exit_reason(container)
            if reason is not None:
                result.append(ServiceStatus(handle, "exited", reason))
                continue
            health = (container.attrs.get("State", {}).get("Health") or {}).get("Status", "")
            detail = f"{container.short_id} (docker health: {health or 'n/a'})"
            result.append(ServiceStatus(handle, "healthy" if probe(handle.base_url) else "unhealthy", detail))
        return result

    def orphans(self) -> list[ServiceHandle]:
        """This ledger's detached containers, found by their labels (compose's are never among them)."""
        found: list[ServiceHandle] = []
        labels = [f"{LABEL}=1", f"{LABEL_LEDGER}={ledger_key()}"]
        for container in self.client.containers.list(all=True, filters={"label": labels}):
            if COMPOSE_PROJECT_LABEL in container.labels:
                continue
            bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
                f"{CONTAINER_PORT}/tcp"
            )
            base_url = f"http://{HOST}:{bindings[0]['HostPort']}" if bindings else ""
            env = dict(item.split("=", 1) for item in container.attrs.get("Config", {}).get("Env") or [] if "=" in item)
            found.append(ServiceHandle(container.labels.get(LABEL_ENV, container.name), base_url, NAME,
                                       container.id, env.get(ADMIN_TOKEN_ENV, "")))
        return sorted(found, key=lambda h: (h.name, h.ident))


def _exit_reason(container: Any) -> str | None:
    """None while the container runs (or is being created), else how it ended."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return "the container disappeared"
    state = container.attrs.get("State", {})
    if state.get("Status") in ("exited", "dead"):
        return f"the container exited with code {state.get('ExitCode')}"
    return None

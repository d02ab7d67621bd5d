"""Run environments as HTTP services, locally or in containers, behind one interface.

>>> with running_services(["petstore"], backend="local") as [petstore]:
...     HTTPSandbox(petstore.base_url, petstore.name)

``start_services`` / ``stop_services`` / ``services_status`` are what `toolgrad sim up`,
`down` and `status` call; services started with ``detach=True`` (the default) are recorded in
the ledger so a later process can find and stop them. ``running_services`` is the scoped form
for tests and the generator: nothing is recorded and everything is stopped on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

from .base import (
    Backend,
    BackendError,
    EngineUnavailableError,
    EventHandler,
    ImageMissingError,
    PortInUseError,
    ServiceEvent,
    ServiceHandle,
    ServiceStartError,
    ServiceStatus,
    default_image_tag,
    ignore_event,
    plan_requests,
)
from .ledger import Ledger

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "EngineUnavailableError",
    "ImageMissingError",
    "PortInUseError",
    "ServiceEvent",
    "ServiceHandle",
    "ServiceStartError",
    "ServiceStatus",
    "default_image_tag",
    "make_backend",
    "running_services",
    "services_status",
    "start_services",
    "stop_services",
]

BackendFactory = Callable[..., Backend]
BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    def decorate(factory: BackendFactory) -> BackendFactory:
        BACKENDS[name] = factory
        return factory

    return decorate


@register_backend("local")
def _local(*, detach: bool = False, image: str | None = None) -> Backend:
    from .local import LocalBackend

    return LocalBackend(detach=detach)


@register_backend("docker")
def _docker(*, detach: bool = False, image: str | None = None) -> Backend:
    # Imported here so the local backend works where the docker SDK is absent or broken.
    from .docker import DockerBackend

    return DockerBackend(image=image, detach=detach)


def make_backend(name: str, *, detach: bool = False, image: str | None = None) -> Backend:
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise BackendError(f"unknown backend {name!r}: choose one of {', '.join(sorted(BACKENDS))}") from None
    return factory(detach=detach, image=image)


def start_services(
    envs: Sequence[str],
    *,
    backend: str = "local",
    seed: int | None = 0,
    port_base: int | None = None,
    timeout: float = 60,
    image: str | None = None,
    detach: bool = True,
    on_event: EventHandler = ignore_event,
) -> list[ServiceHandle]:
    """Start one service per environment and wait until each is healthy.

    All-or-nothing: on failure everything this call started is stopped and a
    :class:`BackendError` (naming the service, with its last log lines) is raised. With
    ``detach`` the services outlive this process and are recorded in the ledger.
    """
    requests = plan_requests(envs, seed=seed, port_base=port_base)
    runner = make_backend(backend, detach=detach, image=image)
    handles = runner.start(requests, timeout=timeout, on_event=on_event)
    if detach:
        try:
            Ledger().add(handles)
        except BaseException:
            runner.stop(handles, on_event=on_event)
            raise
    return handles


def _group(handles: Sequence[ServiceHandle]) -> dict[str, list[ServiceHandle]]:
    groups: dict[str, list[ServiceHandle]] = {}
    for handle in handles:
        groups.setdefault(handle.backend, []).append(handle)
    return groups


def _orphans(backend: str, known: set[tuple[str, str]], *, required: bool) -> list[ServiceHandle]:
    """Running services of ``backend`` not in ``known``; an unreachable engine counts as none unless required."""
    try:
        found = make_backend(backend).orphans()
    except EngineUnavailableError:
        if required:
            raise
        return []
    return [h for h in found if (h.backend, h.ident) not in known]


def stop_services(
    handles: Sequence[ServiceHandle] | None = None, *, on_event: EventHandler = ignore_event
) -> list[ServiceHandle]:
    """Stop ``handles``, or, when None, everything in the ledger plus unrecorded services of ours.

    Returns what was asked to stop. Entries whose service is already gone are dropped quietly.
    """
    ledger = Ledger()
    if handles is None:
        recorded = ledger.handles()
        known = {(h.backend, h.ident) for h in recorded}
        targets = list(recorded)
        for name in sorted(BACKENDS):
            required = any(h.backend == name for h in recorded)
            targets += _orphans(name, known, required=required)
    else:
        targets = list(handles)
    for name, group in sorted(_group(targets).items()):
        make_backend(name).stop(group, on_event=on_event)
        ledger.remove(group)
    return targets


def services_status() -> list[ServiceStatus]:
    """The state of every recorded service, plus running services of ours the ledger lost."""
    recorded = Ledger().handles()
    known = {(h.backend, h.ident) for h in recorded}
    result: list[ServiceStatus] = []
    for name in sorted(BACKENDS):
        group = [h for h in recorded if h.backend == name]
        try:
            runner = make_backend(name)
            result += runner.status(group)
            result += [
                ServiceStatus(h, "unrecorded", "running but not in the ledger")
                for h in runner.orphans()
                if (h.backend, h.ident) not in known
            ]
        except EngineUnavailableError as exc:
            result += [ServiceStatus(h, "unreachable", str(exc).splitlines()[0]) for h in group]
    return result


@contextlib.contextmanager
def running_services(
    envs: Sequence[str],
    *,
    backend: str = "local",
    seed: int | None = 0,
    port_base: int | None = None,
    timeout: float = 60,
    image: str | None = None,
    on_event: EventHandler = ignore_event,
) -> Iterator[list[ServiceHandle]]:
    """Start services for the ``with`` block and stop them when it exits (also on error)."""
    runner = make_backend(backend, detach=False, image=image)
    requests = plan_requests(envs, seed=seed, port_base=port_base)
    handles = runner.start(requests, timeout=timeout, on_event=on_event)
    try:
        yield handles
    finally:
        runner.stop(handles, on_event=on_event)

"""Building the simulator image: a self-contained context (:mod:`.context`), then a docker build
from it, with the last log lines and a fix in the error when it fails; superseded install stages
are pruned afterwards.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator import __version__
from simulator.sandboxes.backends.base import BackendError, default_image_tag

from .context import (
    BUILD_LOG_TAIL,
    BuildEvent,
    BuildEventHandler,
    ImageBuildError,
    context_digest,
    find_project_root,
    ignore_events,
    python_version,
    temporary_context,
)

DEFAULT_BASE = "python:3.11-slim"


@dataclass(frozen=True, slots=True)
class BuiltImage:
    tag: str
    image_id: str
    base: str
    python: str
    seconds: float


# --- the docker build ----------------------------------------------------------------------------


def build_args(base: str | None, context: Path) -> dict[str, str]:
    """The Dockerfile's build args for a prepared context (BASE left out when None: its default)."""
    args = {
        "WHEEL_PYTHON": python_version(),
        "TOOLGRAD_VERSION": __version__,
        "SOURCE_DIGEST": context_digest(context),
    }
    return args if base is None else {"BASE": base, **args}


def _hint(log: list[str], base: str) -> str:
    text = "\n".join(log).lower()
    if "wheelhouse was built for python" in text or "is not a supported wheel" in text:
        return (
            f"\n  fix: the base image's Python must be {python_version()} (the host interpreter that built the "
            "wheels) on a glibc Linux of the same architecture; pick another --base or run with that Python"
        )
    if "no matching distribution" in text:
        return (
            "\n  fix: a wheel is missing for the image's Python/platform; rebuild with a matching host Python"
        )
    if any(
        s in text for s in ("pull access denied", "repository does not exist", "manifest unknown", "dial tcp")
    ):
        return (
            f"\n  fix: the base image {base} is not in the engine and cannot be pulled; build a local base "
            "(`bash .ci/docker-setup.sh` makes toolgrad-base:bookworm) and pass --base"
        )
    return ""


def _check_architecture(client: Any) -> None:
    engine = str(client.info().get("Architecture", ""))
    host = platform.machine()
    aliases = {"amd64": "x86_64", "arm64": "aarch64"}
    if engine and aliases.get(engine, engine) != aliases.get(host, host):
        raise ImageBuildError(
            f"the engine runs {engine} images but this host builds {host} wheels: build on a {engine} host"
        )


def build_image(
    *,
    base: str = DEFAULT_BASE,
    tag: str | None = None,
    project_root: Path | None = None,
    client: Any = None,
    on_event: BuildEventHandler = ignore_events,
) -> BuiltImage:
    """Build the simulator image; every build log line is reported as a ``log`` event.

    Raises :class:`ImageBuildError` (with the last log lines) when any step fails, and
    :class:`~simulator.sandboxes.backends.base.EngineUnavailableError` when no engine answers.
    """
    from simulator.sandboxes.backends.docker import connect

    tag = tag or default_image_tag()
    root = project_root or find_project_root()
    engine = client if client is not None else connect(timeout=600)
    _check_architecture(engine)
    started = time.monotonic()
    with temporary_context(project_root=root, on_event=on_event) as context:
        on_event(BuildEvent("phase", f"building {tag} from {base}"))
        build_started = time.monotonic()
        image_id = _run_build(
            engine, context, tag=tag, base=base, args=build_args(base, context), on_event=on_event
        )
        on_event(BuildEvent("phase", "docker build done", time.monotonic() - build_started))
    pruned_started = time.monotonic()
    pruned = _prune_superseded_stages(engine)
    if pruned:
        on_event(
            BuildEvent("phase", f"removed {pruned} superseded image(s)", time.monotonic() - pruned_started)
        )
    seconds = time.monotonic() - started
    on_event(BuildEvent("built", f"{tag} ({image_id[:19]})", seconds))
    return BuiltImage(tag=tag, image_id=image_id, base=base, python=python_version(), seconds=seconds)


def _run_build(
    engine: Any, context: Path, *, tag: str, base: str, args: dict[str, str], on_event: BuildEventHandler
) -> str:
    """Stream one build, reporting each log line; returns the image id."""
    log: list[str] = []
    image_id = ""

    def failed(message: str) -> ImageBuildError:
        log.append(message)
        tail = "\n".join(f"    | {line}" for line in log[-BUILD_LOG_TAIL:])
        return ImageBuildError(
            f"docker build of {tag} from {base} failed: {message}\n{tail}{_hint(log, base)}"
        )

    try:
        chunks = engine.api.build(
            path=str(context),
            tag=tag,
            buildargs=args,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in chunks:
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    log.append(line)
                    on_event(BuildEvent("log", line))
            if "error" in chunk:
                raise failed(str(chunk.get("error", "")).strip())
            aux = chunk.get("aux")
            if isinstance(aux, Mapping) and "ID" in aux:
                image_id = str(aux["ID"])
        if not image_id:
            image_id = str(engine.images.get(tag).id)
    except _engine_errors() as exc:
        raise failed(f"{type(exc).__name__}: {exc}") from exc
    return image_id


def _engine_errors() -> tuple[type[Exception], ...]:
    """What a docker engine call raises when the engine fails. Imported when a call is made: the
    docker SDK (and requests) would otherwise load with every ``toolgrad`` command."""
    import docker.errors
    import requests

    return docker.errors.DockerException, requests.RequestException


INSTALL_STAGE_LABEL = "toolgrad.sim.stage=install"
FINAL_IMAGE_LABEL = "org.opencontainers.image.title=toolgrad-sim"


def _prune_superseded_stages(engine: Any) -> int:
    """Remove superseded images: dangling install stages but the newest (the next build's cache), old finals."""
    try:
        stages = engine.images.list(filters={"dangling": True, "label": INSTALL_STAGE_LABEL})
    except _engine_errors():
        return 0
    stages.sort(key=lambda image: str(image.attrs.get("Created", "")), reverse=True)
    try:
        # Final images lose their tag to a newer build and are of no further use.
        finals = engine.images.list(filters={"dangling": True, "label": FINAL_IMAGE_LABEL})
    except _engine_errors():
        finals = []
    removed = 0
    for image in [*stages[1:], *finals]:
        with contextlib.suppress(*_engine_errors()):
            engine.images.remove(image.id, noprune=False)
            removed += 1
    return removed


def pinned_reference(image: str) -> str:
    """The image's content-addressed ID (``sha256:...``) when a reachable engine holds ``image``;
    else ``image`` unchanged. A tag can be moved to other bytes; an ID cannot."""
    from simulator.sandboxes.backends.docker import connect

    failures: tuple[type[Exception], ...] = (BackendError, *_engine_errors())
    try:
        return str(connect(timeout=10).images.get(image).id)
    except failures:
        return image  # no engine or no such image: the tag is all there is

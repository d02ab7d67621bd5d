"""What the docker tier shares: the image it runs, why it cannot run, compose commands, our containers."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from simulator.containers.context import find_project_root, source_digest
from simulator.sandboxes.backends.base import LABEL, default_image_tag

# TOOLGRAD_IMAGE: another tag, so two checkouts sharing one engine do not overwrite each other's image
IMAGE = os.environ.get("TOOLGRAD_IMAGE") or default_image_tag()
SETUP_HINT = "provision with `bash .ci/docker-setup.sh`"


@functools.cache
def tier_skip_reason() -> str | None:
    """Why the docker tier cannot run here, or None when it can."""
    try:
        import docker.errors
        from docker.client import from_env
    except ImportError as exc:  # pragma: no cover - docker is a dependency
        return f"the docker SDK is not importable ({exc})"
    try:
        client = from_env(timeout=10)
        client.ping()
    except Exception as exc:
        return (
            f"no Docker engine answers ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); {SETUP_HINT}"
        )
    try:
        labels = client.images.get(IMAGE).labels or {}
    except docker.errors.ImageNotFound:
        return f"the simulator image {IMAGE} is absent; {SETUP_HINT} or run `toolgrad sim image`"
    finally:
        client.close()
    # Comparing containers with the in-process simulator only means something for the same code.
    built_from = labels.get("toolgrad.sim.source-digest", "")
    here = source_digest(find_project_root(Path(__file__).parent))
    if built_from != here:
        return (
            f"the simulator image {IMAGE} was built from other sources than this checkout "
            f"(source digest {built_from[:12] or 'none'} != {here[:12]}); rebuild it: `toolgrad sim image "
            f"--base {labels.get('org.opencontainers.image.base.name', 'BASE')}`"
        )
    return None


def compose_commands() -> dict[str, list[str]]:
    """The compose implementations present: v2 (`docker compose`) and/or v1 (`docker-compose`)."""
    found: dict[str, list[str]] = {}
    for label, argv in (("v2", ["docker", "compose"]), ("v1", ["docker-compose"])):
        if shutil.which(argv[0]) is None:
            continue
        try:
            probe = subprocess.run(
                [*argv, "version"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            found[label] = argv
    return found


def labelled_containers() -> set[str]:
    """Ids of every container (running or not) carrying our label."""
    from docker.client import from_env

    client = from_env()
    try:
        return {c.id for c in client.containers.list(all=True, filters={"label": f"{LABEL}=1"})}
    finally:
        client.close()

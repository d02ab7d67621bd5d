"""How a container of the simulator image reaches an environment: by name, or through a mount.

The image ships environments by name (``/opt/toolgrad/envs``). Anything else the host has, an
environment folder or a bare spec file, is bind-mounted read-only into the container under
:data:`CUSTOM_ROOT` and ``TOOLGRAD_ENV`` names the mounted path. The folder keeps its name inside,
so the environment keeps its name (and its fingerprint): a dataset made on the host certifies
against the container. Used by `toolgrad sim compose` and the docker backend.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from simulator.environments.environment import ENV_FILE, environment_folders, shipped_root
from simulator.errors import UnknownEnvironmentError

CUSTOM_ROOT = "/opt/toolgrad/custom"
# docker splits a bind on ":" and compose interpolates "$": a path with either cannot be mounted
_UNMOUNTABLE = (":", "$", "\n")


@dataclass(frozen=True, slots=True)
class EnvMount:
    """A host folder mounted read-only at ``target``; ``toolgrad_env`` is what the container serves
    (the folder itself, or the spec file in it)."""

    source: Path  # absolute, on the host
    target: str
    toolgrad_env: str


def image_environments(*folders: Path) -> set[str]:
    """The environment names an image holds that was built with ``folders`` (default: the kit's
    shipped environments, what ``toolgrad sim image`` copies in)."""
    names: set[str] = set()
    for folder in folders or (shipped_root(),):
        if folder.is_dir():
            names.update(p.name for p in folder.iterdir() if (p / ENV_FILE).is_file())
    return names


def env_mount(env: str, image_names: Collection[str], *, strict: bool = True) -> EnvMount | None:
    """None when the image serves ``env`` by name, else the mount that lets it serve it.

    An existing path wins (as everywhere an environment is named); then a name in
    ``image_names``; then a name found only on the host (``$TOOLGRAD_ENVS_DIR``), whose folder is
    mounted. Any other name is an :class:`UnknownEnvironmentError` listing ``image_names``, or,
    not ``strict`` (an image that may hold more than we know of), left to the image."""
    path = Path(env)
    if not path.exists():
        if env in image_names:
            return None
        folder = environment_folders().get(env)
        if folder is None:
            if not strict:
                return None
            shipped = ", ".join(sorted(image_names)) or "none"
            raise UnknownEnvironmentError(
                f"unknown environment {env!r}: no such file or folder, and the image does not ship it "
                f"(it ships: {shipped}); give the path of an environment folder or a spec file to mount it")
        path = folder
    path = path.resolve()
    folder = path if path.is_dir() else path.parent
    if any(c in str(path) for c in _UNMOUNTABLE):
        raise UnknownEnvironmentError(
            f"cannot mount {str(path)!r} into a container: docker cannot bind a path holding ':', '$' or a "
            "line break; move or rename it")
    target = f"{CUSTOM_ROOT}/{folder.name or 'env'}"
    return EnvMount(folder, target, target if path.is_dir() else f"{target}/{path.name}")

"""The build context of the simulator image: the project's wheel and every dependency wheel (a
wheelhouse), the shipped environments, the Dockerfile and the digest of the sources copied in.

The image build needs no network: every wheel is built or downloaded on the host with the running
interpreter's pip, and the Dockerfile installs with ``pip install --no-index``. So the wheelhouse
must fit the image: same Python minor version and platform (manylinux wheels need a glibc base
such as Debian bookworm or python:3.11-slim).

Dependency wheels are cached under the user cache dir, keyed by pyproject.toml, the Python
version and the platform; the project wheel is rebuilt every time (from a copy of the sources,
so the checkout gets no build/ or egg-info litter). :mod:`.images` runs the docker build.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from simulator.sandboxes.backends.base import BackendError
from simulator.sandboxes.backends.ledger import cache_dir

DISTRIBUTION = "toolgrad-kit"
IMAGE_EXTRAS = "mcp"  # the image also serves environments over MCP (docker/Dockerfile installs the same)
BUILD_LOG_TAIL = 25
# Files at the project root the wheel build may need besides the packages.
_ROOT_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in", "README.md", "README.rst", "LICENSE")


class ImageBuildError(BackendError):
    """The wheelhouse or the image could not be built; the message carries the last log lines."""


BuildEventKind = Literal["phase", "log", "built"]


@dataclass(frozen=True, slots=True)
class BuildEvent:
    kind: BuildEventKind
    message: str
    seconds: float | None = None


BuildEventHandler = Callable[[BuildEvent], None]


def ignore_events(event: BuildEvent) -> None:
    """The default event handler: report nothing."""


# --- project and wheelhouse ----------------------------------------------------------------------


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def find_project_root(start: Path | None = None) -> Path:
    """The checkout holding pyproject.toml for toolgrad-kit: from ``start`` (default cwd) or this package."""
    candidates = [start or Path.cwd(), Path(__file__).resolve().parent]
    for candidate in candidates:
        for directory in (candidate.resolve(), *candidate.resolve().parents):
            pyproject = directory / "pyproject.toml"
            if pyproject.is_file() and f'name = "{DISTRIBUTION}"' in pyproject.read_text("utf-8", "replace"):
                return directory
    raise ImageBuildError(
        f"no {DISTRIBUTION} source checkout found from {candidates[0]}: building the image needs one"
        "\n  fix: run from the repository, or pass --project-dir"
    )


def wheelhouse_key(project_root: Path) -> str:
    """Cache key of the dependency wheels: pyproject.toml, Python version, platform."""
    digest = hashlib.sha256()
    digest.update((project_root / "pyproject.toml").read_bytes())
    digest.update(f"\0{python_version()}\0{sys.platform}\0{platform.machine()}".encode())
    return digest.hexdigest()[:16]


def _source_roots(project_root: Path) -> list[Path]:
    """What a wheel build reads: root metadata files and the packages pyproject includes."""
    pyproject = tomllib.loads((project_root / "pyproject.toml").read_text("utf-8"))
    find = pyproject.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
    patterns = find.get("include", ["*"])
    roots = [project_root / name for name in _ROOT_FILES if (project_root / name).is_file()]
    for entry in sorted(project_root.iterdir()):
        if (
            entry.is_dir()
            and (entry / "__init__.py").is_file()
            and any(fnmatch.fnmatch(entry.name, p) for p in patterns)
        ):
            roots.append(entry)
    return roots


_IGNORED = ("__pycache__", "*.pyc", "*.egg-info")


def _copy_sources(project_root: Path, dest: Path) -> None:
    for root in _source_roots(project_root):
        if root.is_dir():
            shutil.copytree(root, dest / root.name, ignore=shutil.ignore_patterns(*_IGNORED))
        else:
            shutil.copy2(root, dest / root.name)


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    # links followed: simulator/_envs links to envs/, and the build context (copytree) holds real
    # files there, so the checkout's digest must read the same files the context's does
    found = [Path(folder) / name for folder, _, names in os.walk(root, followlinks=True) for name in names]
    for path in sorted(found):
        if path.is_file() and not any(
            fnmatch.fnmatch(part, pattern) for part in path.parts for pattern in _IGNORED
        ):
            yield path


def source_digest(project_root: Path, *, envs_dir: Path | None = None) -> str:
    """sha256 over the sources and environments an image is built from (recorded as an image label).

    Same digest, same code and data: lets a caller tell whether an image still matches a checkout.
    """
    digest = hashlib.sha256()
    envs = envs_dir if envs_dir is not None else envs_source(project_root)
    named = [(root, root.parent) for root in _source_roots(project_root)]
    for root, anchor in named:
        for path in _files(root):
            _add(digest, path.relative_to(anchor).as_posix(), path)
    if envs.is_dir():
        for path in _files(envs):
            _add(digest, "envs/" + path.relative_to(envs).as_posix(), path)
    return digest.hexdigest()


def _add(digest: Any, name: str, path: Path) -> None:
    digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())


def _pip_wheel(args: list[str], *, what: str) -> None:
    command = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", *args]
    # A fixed SOURCE_DATE_EPOCH makes the project wheel byte-identical while the sources are, so
    # docker's layer cache skips the install step on a rebuild with nothing changed.
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).splitlines()[-BUILD_LOG_TAIL:]
        raise ImageBuildError(
            f"pip wheel failed while building {what} (exit {result.returncode}): {' '.join(command)}\n"
            + "\n".join(f"    | {line}" for line in lines)
        )


def build_wheelhouse(project_root: Path, dest: Path, *, on_event: BuildEventHandler = ignore_events) -> Path:
    """Fill ``dest`` with the project wheel and every dependency wheel; returns ``dest``."""
    with tempfile.TemporaryDirectory(prefix="toolgrad-src-") as tmp:
        sources = Path(tmp) / "src"
        sources.mkdir()
        _copy_sources(project_root, sources)
        return _build_wheels(sources, dest, on_event=on_event)


def _build_wheels(sources: Path, dest: Path, *, on_event: BuildEventHandler) -> Path:
    """Wheels for a copied source tree (pip builds in the tree it is given, leaving build/ there)."""
    if sys.platform != "linux":
        raise ImageBuildError(
            f"the wheelhouse is built for this host ({sys.platform}), but the image is Linux: "
            "run `toolgrad sim image` on Linux (binary wheels must match the image's platform)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    deps = cache_dir() / "wheelhouse" / wheelhouse_key(sources)
    started = time.monotonic()
    if deps.is_dir():
        on_event(BuildEvent("phase", f"dependency wheels: cached in {deps}"))
    else:
        on_event(
            BuildEvent("phase", f"dependency wheels: building for Python {python_version()} into {deps}")
        )
        staging = Path(tempfile.mkdtemp(prefix="wheelhouse-", dir=_ensure(deps.parent)))
        try:
            _pip_wheel(["--wheel-dir", str(staging), f"{sources}[{IMAGE_EXTRAS}]"], what="the dependency wheels")
            for wheel in staging.glob(DISTRIBUTION.replace("-", "_") + "-*.whl"):
                wheel.unlink()  # the project wheel is rebuilt every time, below
            staging.rename(deps)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        for stale in deps.parent.iterdir():  # wheelhouses of older pyproject.toml versions
            if stale != deps and stale.is_dir() and not stale.name.startswith("wheelhouse-"):
                shutil.rmtree(stale, ignore_errors=True)
        on_event(BuildEvent("phase", "dependency wheels built", time.monotonic() - started))
    for wheel in sorted(deps.glob("*.whl")):
        shutil.copy2(wheel, dest / wheel.name)

    started = time.monotonic()
    _pip_wheel(["--no-deps", "--wheel-dir", str(dest), str(sources)], what=f"the {DISTRIBUTION} wheel")
    on_event(BuildEvent("phase", f"{DISTRIBUTION} wheel built", time.monotonic() - started))
    return dest


def _ensure(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def envs_source(project_root: Path) -> Path:
    """Where the image's environments come from: ``<project>/envs``, the shipped set. Folders in
    ``$TOOLGRAD_ENVS_DIR`` add to it on the host; a container gets them mounted, not baked in."""
    return project_root / "envs"


DIGEST_FILE = "SOURCE_DIGEST"


def prepare_context(dest: Path, *, project_root: Path, on_event: BuildEventHandler = ignore_events) -> Path:
    """Write a self-contained build context into ``dest``, replacing it.

    It holds the Dockerfile, wheels/, envs/ and SOURCE_DIGEST: the :func:`source_digest` of
    the very sources and environments copied in (a snapshot, however the checkout changes).
    """
    dockerfile = project_root / "docker" / "Dockerfile"
    if not dockerfile.is_file():
        raise ImageBuildError(f"{dockerfile} is missing: the checkout is incomplete")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy2(dockerfile, dest / "Dockerfile")
    envs = envs_source(project_root)
    if envs.is_dir():
        shutil.copytree(envs, dest / "envs", ignore=shutil.ignore_patterns(*_IGNORED))
    else:
        (dest / "envs").mkdir()
        on_event(BuildEvent("phase", f"no environments at {envs}: the image ships none"))
    with tempfile.TemporaryDirectory(prefix="toolgrad-src-") as tmp:
        sources = Path(tmp) / "src"
        sources.mkdir()
        _copy_sources(project_root, sources)
        digest = source_digest(sources, envs_dir=dest / "envs")
        _build_wheels(sources, dest / "wheels", on_event=on_event)
    (dest / DIGEST_FILE).write_text(digest + "\n", encoding="utf-8")
    on_event(BuildEvent("phase", f"build context ready in {dest}"))
    return dest


def context_digest(context: Path) -> str:
    return (context / DIGEST_FILE).read_text(encoding="utf-8").strip()


@contextlib.contextmanager
def temporary_context(*, project_root: Path, on_event: BuildEventHandler = ignore_events) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="toolgrad-image-") as tmp:
        yield prepare_context(Path(tmp) / "context", project_root=project_root, on_event=on_event)

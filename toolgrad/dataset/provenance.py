"""Where a dataset's samples came from: the environments, settings, package versions and checkout.

Every field here lands in each sample's :class:`~toolgrad.records.Provenance`, so nothing here
may depend on the host, the date or the run: only on the code, the settings and the
environments (their paths relative to the dataset's folder).
"""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import simulator
from simulator.environments.environment import environment_folders
from toolgrad import __version__
from toolgrad.records import Provenance
from toolgrad.settings import GenerateSettings
from toolgrad.toolbox import Toolbox


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return ""


def package_versions() -> dict[str, str]:
    return {"simulator": simulator.__version__, "toolgrad": __version__,
            "faker": _version("faker"), "openai": _version("openai")}


@lru_cache(maxsize=1)
def git_revision() -> str:
    """``git rev-parse HEAD`` of the checkout toolgrad runs from; "" when it is not one."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return ""
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def make_provenance(settings: GenerateSettings, toolbox: Toolbox, llm: str) -> Provenance:
    generator = {**settings.generator_config().to_json(), "environments": sorted(toolbox.environments)}
    if llm != "offline":  # a model's sampling temperature is part of how its samples were made
        generator["temperature"] = settings.temperature
    return Provenance(
        environments=toolbox.fingerprints(), generator=generator, llm=llm,
        model=settings.model if llm != "offline" else "", base_url=settings.base_url if llm != "offline" else "",
        versions=package_versions(), git_revision=git_revision(),
        environment_paths=environment_paths(toolbox, Path(settings.output).resolve().parent),
    )


def environment_paths(toolbox: Toolbox, dataset_dir: Path) -> dict[str, str]:
    """Where each environment not available by name came from, relative to ``dataset_dir`` (so a
    dataset and its environments can move together)."""
    by_name = environment_folders()
    paths = {}
    for name, env in sorted(toolbox.environments.items()):
        if name in by_name:
            continue
        origin = env.directory if env.directory is not None else env.spec.source
        paths[name] = Path(os.path.relpath(Path(origin).resolve(), dataset_dir)).as_posix()
    return paths

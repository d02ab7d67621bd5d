"""Environments: a spec plus its seed, fixture count and overrides, found by name or path.

An environment directory (``envs/<name>/``) holds the spec and an ``env.yaml``::

    name: petstore
    spec: openapi.yaml
    seed: 0
    fixtures: 5
    source: https://...            # where the spec came from
    licence: Apache-2.0
    overrides:                     # corrections to inference: docs/environments.md
      operations: {opId: {kind: list, resource: pet, upsert: false}}
      resources: {pet: {id_field: id, aliases: [name], store: animal, writable: true}}

``resolve_environment`` accepts a shipped environment's name, an environment directory or a
spec file (a bare spec gets the defaults).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .errors import SpecError, UnknownEnvironmentError
from .loader import load_spec
from .model import Spec
from .resources import check_overrides
from .state import canonical_json, sha256_hex

DEFAULT_EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
DEFAULT_FIXTURES = 5
ENV_FILE = "env.yaml"
_SPEC_NAMES = ("openapi.yaml", "openapi.yml", "openapi.json", "swagger.yaml", "swagger.json", "toolbench.json")


def faker_version() -> str:
    try:
        return version("faker")
    except PackageNotFoundError:  # pragma: no cover - faker is a dependency
        return "unknown"


@lru_cache(maxsize=1)
def code_sha256() -> str:
    """sha256 over the simulator's own source files: behaviour can change without a version
    bump, and a dataset made by other code must show up as a fingerprint mismatch."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


ENVS_DIR_VARIABLE = "TOOLGRAD_ENVS_DIR"


def shipped_root() -> Path:
    """The environments that ship with the kit, found through ``importlib.resources`` (in a
    checkout, ``simulator/_envs`` links to the repository's ``envs/``; a wheel holds a copy)."""
    return Path(str(resources.files("simulator").joinpath("_envs"))).resolve()


def environment_roots() -> list[Path]:
    """Folders whose sub-folders are environments: each folder in ``$TOOLGRAD_ENVS_DIR``
    (``os.pathsep``-separated), then the shipped ones."""
    extra = [Path(p) for p in os.environ.get(ENVS_DIR_VARIABLE, "").split(os.pathsep) if p]
    return [*extra, shipped_root()]


def environment_folders() -> dict[str, Path]:
    """Every environment available by name: its folder name -> the folder. A name found in two
    roots is refused, both paths named: which one a dataset meant would be a guess."""
    found: dict[str, Path] = {}
    for root in environment_roots():
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if not (folder / ENV_FILE).is_file():
                continue
            if folder.name in found and found[folder.name].resolve() != folder.resolve():
                raise UnknownEnvironmentError(
                    f"two environments are named {folder.name!r}: {found[folder.name]} and {folder}; "
                    f"rename one of the folders (the name is the folder's name)")
            found[folder.name] = folder
    return found


def shipped_environments() -> list[str]:
    """The names of every environment available by name (shipped, and ``$TOOLGRAD_ENVS_DIR``'s)."""
    return sorted(environment_folders())


@dataclass(frozen=True)
class Environment:
    name: str
    spec: Spec
    seed: int = 0
    fixtures: int = DEFAULT_FIXTURES
    overrides: dict[str, Any] = field(default_factory=dict)
    directory: Path | None = None
    epoch: dt.datetime = DEFAULT_EPOCH
    source: str = ""
    licence: str = ""

    def fingerprint(self) -> dict[str, Any]:
        """Everything a response depends on besides the request history."""
        return {
            "env": self.name,
            "spec_sha256": self.spec.sha256,
            "seed": self.seed,
            "fixtures": self.fixtures,
            "overrides_sha256": sha256_hex(canonical_json(self.overrides)),
            "epoch": self.epoch.isoformat(),
            "simulator_version": __version__,
            "simulator_code_sha256": code_sha256(),
            "faker_version": faker_version(),
        }

    def with_seed(self, seed: int) -> Environment:
        return Environment(
            self.name, self.spec, seed, self.fixtures, self.overrides, self.directory,
            self.epoch, self.source, self.licence,
        )


def _read_env_file(directory: Path) -> dict[str, Any]:
    path = directory / ENV_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", file=str(path), fix="fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise SpecError("an env.yaml must be a mapping", file=str(path), fix="see envs/petstore/env.yaml")
    for key, kind in (("seed", int), ("fixtures", int), ("overrides", dict), ("spec", str)):
        if key in data and not isinstance(data[key], kind):
            raise SpecError(
                f"{key!r} must be a {kind.__name__}, got {type(data[key]).__name__}",
                file=str(path), pointer=f"/{key}", fix=f"give {key} as a {kind.__name__}",
            )
    try:
        check_overrides(data.get("overrides") or {})
    except ValueError as exc:
        raise SpecError(str(exc), file=str(path), pointer="/overrides", fix="see docs/environments.md") from exc
    return data


def _spec_in(directory: Path, data: dict[str, Any]) -> Path:
    if "spec" in data:
        return directory / data["spec"]
    for name in _SPEC_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise SpecError(
        "no spec file in the environment directory", file=str(directory),
        fix=f"add one of {', '.join(_SPEC_NAMES)} or name it with 'spec:' in env.yaml",
    )


def resolve_path(ref: str | Path) -> Path:
    """The directory or file an environment reference names."""
    path = Path(ref)
    if path.exists():
        return path.resolve()
    candidate = environment_folders().get(str(ref))
    if candidate is not None:
        return candidate.resolve()
    known = ", ".join(shipped_environments()) or "(none found)"
    raise UnknownEnvironmentError(
        f"{ref!r} is neither a file, a directory nor a shipped environment (shipped: {known})"
    )


@lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int, seed: int | None) -> Environment:
    p = Path(path)
    if p.is_dir():
        data = _read_env_file(p) if (p / ENV_FILE).is_file() else {}
        spec = load_spec(_spec_in(p, data))
        epoch = DEFAULT_EPOCH
        if "epoch" in data:
            epoch = dt.datetime.fromisoformat(str(data["epoch"])).astimezone(dt.UTC)
        env = Environment(
            name=str(data.get("name", p.name)),
            spec=spec,
            seed=int(data.get("seed", 0)),
            fixtures=int(data.get("fixtures", DEFAULT_FIXTURES)),
            overrides=data.get("overrides") or {},
            directory=p,
            epoch=epoch,
            source=str(data.get("source", "")),
            licence=str(data.get("licence", "")),
        )
    else:
        spec = load_spec(p)
        env = Environment(name=p.stem, spec=spec)
    return env if seed is None else env.with_seed(seed)


def load_environments(refs: Iterable[str | Path], *, seed: int | None = None) -> dict[str, Environment]:
    """Each reference's environment, by name. Two references that load under one name (two
    specs both called ``openapi.yaml``, say) are refused with both paths named: one would
    silently replace the other."""
    found: dict[str, tuple[Path, Environment]] = {}
    for ref in refs:
        path = resolve_path(ref)
        env = load_environment(path, seed=seed)
        if env.name in found and found[env.name][0] != path:
            raise UnknownEnvironmentError(
                f"two environments are named {env.name!r}: {found[env.name][0]} and {path}; put each spec in "
                "a folder of its own (the folder's name is the environment's name)")
        found[env.name] = (path, env)
    return {name: env for name, (_, env) in found.items()}


def load_environment(ref: str | Path, *, seed: int | None = None) -> Environment:
    """Load (memoised on path and modification time) the environment ``ref`` names."""
    path = resolve_path(ref)
    stat_target = path / ENV_FILE if (path / ENV_FILE).is_file() else path
    return _load_cached(str(path), stat_target.stat().st_mtime_ns, seed)

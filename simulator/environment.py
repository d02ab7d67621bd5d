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
from dataclasses import dataclass, field
from functools import lru_cache
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


def envs_dir() -> Path:
    """Where shipped environments live: ``$TOOLGRAD_ENVS_DIR`` or the repository's ``envs/``."""
    override = os.environ.get("TOOLGRAD_ENVS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "envs"


def shipped_environments() -> list[str]:
    root = envs_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / ENV_FILE).is_file())


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
    candidate = envs_dir() / str(ref)
    if candidate.is_dir():
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


def load_environment(ref: str | Path, *, seed: int | None = None) -> Environment:
    """Load (memoised on path and modification time) the environment ``ref`` names."""
    path = resolve_path(ref)
    stat_target = path / ENV_FILE if (path / ENV_FILE).is_file() else path
    return _load_cached(str(path), stat_target.stat().st_mtime_ns, seed)

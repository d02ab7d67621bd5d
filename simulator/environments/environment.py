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
    auth:                          # what `--auth enforce` accepts, per security scheme name
      credentials: {api_key: test-key, petstore_auth: [token-1, token-2], basic: "user:password"}
    limits:                        # state a server may hold (see sessions.Limits; flags override)
      max_sessions: 10000
      journal: 100

The spec (and every file it references) must lie inside the environment's folder (or a folder
in ``$TOOLGRAD_SPEC_ROOTS``); see :mod:`simulator.spec.confine`.

``load_environment`` accepts a shipped environment's name, an environment directory or a
spec file (a bare spec gets the defaults). An environment is named after its folder (or
``name:`` in env.yaml); a bare spec file after its ``info.title`` (:func:`bare_spec_name`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from simulator import __version__
from simulator.canonical import canonical_json, sha256_hex
from simulator.errors import SpecError, UnknownEnvironmentError
from simulator.spec.confine import ReadRefused, allowed_roots, check_inside, read_regular_file
from simulator.spec.loader import load_spec, load_yaml_bounded
from simulator.spec.model import Spec
from simulator.spec.yaml_limits import AliasBombError

from .resources import check_overrides

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
    """sha256 over the simulator's own source files (:func:`sources_sha256` of the ``simulator``
    package, every module of it): behaviour can change without a version bump, and a dataset
    made by other code must show up as a fingerprint mismatch."""
    return sources_sha256(Path(__file__).resolve().parent.parent)


def sources_sha256(package: Path) -> str:
    """sha256 over every ``*.py`` file under ``package`` (path and bytes, in path order), the
    shipped environments' folder (``_envs``, data that each fingerprint names on its own) aside."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.parts[0] == "_envs":
            continue
        digest.update(relative.as_posix().encode() + b"\0")
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
            if folder.name in found and not _same_folder(found[folder.name], folder):
                raise UnknownEnvironmentError(
                    f"two environments are named {folder.name!r}: {found[folder.name]} and {folder}; "
                    f"rename one of the folders (the name is the folder's name)")
            found.setdefault(folder.name, folder)
    return found


def _same_folder(a: Path, b: Path) -> bool:
    """One environment found twice (the simulator image copies the shipped ones to a folder of its
    own): the same folder, or the same files with the same bytes."""
    if a.resolve() == b.resolve():
        return True

    def files(root: Path) -> dict[str, Path]:
        return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}

    left, right = files(a), files(b)
    return left.keys() == right.keys() and all(left[k].read_bytes() == right[k].read_bytes() for k in left)


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
    # not in the fingerprint: they decide who may call, not what a call answers
    credentials: dict[str, tuple[str, ...]] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)

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
        return dataclasses.replace(self, seed=seed)


LIMIT_KEYS = ("max_sessions", "max_snapshots", "state_budget", "session_bytes", "journal", "journal_body",
              "tombstones")
_ENV_FILE_LIMIT = 1024 * 1024


def _read_env_file(directory: Path) -> dict[str, Any]:
    path = directory / ENV_FILE
    try:
        data = load_yaml_bounded(read_regular_file(path, _ENV_FILE_LIMIT), yaml.SafeLoader) or {}
    except (ReadRefused, AliasBombError) as exc:
        raise SpecError(str(exc), file=str(path), fix="an env.yaml is a small mapping") from None
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror or exc}", file=str(path)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", file=str(path), fix="fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise SpecError("an env.yaml must be a mapping", file=str(path), fix="see envs/petstore/env.yaml")
    for key, kind in (("seed", int), ("fixtures", int), ("overrides", dict), ("spec", str), ("auth", dict),
                      ("limits", dict)):
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


def _epoch(data: dict[str, Any], path: Path) -> dt.datetime:
    if "epoch" not in data:
        return DEFAULT_EPOCH
    value = data["epoch"]
    try:
        epoch = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        return (epoch if epoch.tzinfo else epoch.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise SpecError(f"'epoch' is not an ISO 8601 date and time: {value!r}", file=str(path / ENV_FILE),
                        pointer="/epoch", fix="write it like 2025-01-01T00:00:00+00:00") from None


def _credentials(data: dict[str, Any], path: Path) -> dict[str, tuple[str, ...]]:
    raw = (data.get("auth") or {}).get("credentials") or {}
    where = str(path / ENV_FILE)
    if not isinstance(raw, dict):
        raise SpecError("'auth.credentials' must be a mapping of scheme name to value(s)", file=where,
                        pointer="/auth/credentials", fix="e.g. credentials: {api_key: test-key}")
    out: dict[str, tuple[str, ...]] = {}
    for name, value in raw.items():
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise SpecError(f"credential {name!r} must be a non-empty string or a list of them", file=where,
                            pointer=f"/auth/credentials/{name}", fix="quote the value")
        out[str(name)] = tuple(values)
    return out


def _limits(data: dict[str, Any], path: Path) -> dict[str, int]:
    raw = data.get("limits") or {}
    for key, value in raw.items():
        if key not in LIMIT_KEYS or not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SpecError(f"limits.{key}: expected one of {', '.join(LIMIT_KEYS)} with a whole number >= 0",
                            file=str(path / ENV_FILE), pointer=f"/limits/{key}", fix="see simulator/state/sessions.py")
    return dict(raw)


def _spec_in(directory: Path, data: dict[str, Any]) -> Path:
    if "spec" in data:
        target = directory / data["spec"]
        try:
            check_inside(target, allowed_roots(directory), f"'spec: {data['spec']}'")
        except ReadRefused as exc:
            raise SpecError(str(exc), file=str(directory / ENV_FILE), pointer="/spec",
                            fix="name a spec file inside the environment's folder") from None
        return target
    for name in _SPEC_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise SpecError(
        "no spec file in the environment directory", file=str(directory),
        fix=f"add one of {', '.join(_SPEC_NAMES)} or name it with 'spec:' in env.yaml",
    )


_NOT_IN_NAME = re.compile(r"[^a-z0-9]+")
MAX_TITLE_NAME = 64


def bare_spec_name(title: str, stem: str) -> str:
    """A bare spec file's environment name: its ``info.title`` (a ToolBench file's tool name) in
    lower-case ASCII, each run of other characters one ``-`` (``Swagger Petstore - OpenAPI 3.0`` ->
    ``swagger-petstore-openapi-3-0``), at most 64 characters; the file's stem when the spec has no
    title (the loader then titles it with the stem) or nothing of it is left."""
    if title == stem:
        return stem
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return _NOT_IN_NAME.sub("-", ascii_title)[:MAX_TITLE_NAME].strip("-") or stem


def is_plain_name(ref: str) -> bool:
    """True for a name that cannot be a path elsewhere (``petstore``, not ``/dev/zero`` or ``../x``):
    what an environment named by untrusted input (a dataset's provenance) must be."""
    return bool(ref) and ref not in (".", "..") and not any(c in ref for c in "/\\\0") and not ref.startswith("~")


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
        spec = load_spec(_spec_in(p, data), roots=(str(p),))
        env = Environment(
            name=str(data.get("name", p.name)),
            spec=spec,
            seed=int(data.get("seed", 0)),
            fixtures=int(data.get("fixtures", DEFAULT_FIXTURES)),
            overrides=data.get("overrides") or {},
            directory=p,
            epoch=_epoch(data, p),
            source=str(data.get("source", "")),
            licence=str(data.get("licence", "")),
            credentials=_credentials(data, p),
            limits=_limits(data, p),
        )
    else:
        spec = load_spec(p)
        env = Environment(name=bare_spec_name(spec.title, p.stem), spec=spec)
    return env if seed is None else env.with_seed(seed)


def load_environments(refs: Iterable[str | Path], *, seed: int | None = None) -> dict[str, Environment]:
    """Each reference's environment, by name. Two references that load under one name (two
    folders both called ``my-api``, two bare specs with one title) are refused with both paths
    named: one would silently replace the other."""
    found: dict[str, tuple[Path, Environment]] = {}
    for ref in refs:
        path = resolve_path(ref)
        env = load_environment(path, seed=seed)
        if env.name in found and found[env.name][0] != path:
            raise UnknownEnvironmentError(
                f"two environments are named {env.name!r}: {found[env.name][0]} and {path}; put each spec in "
                "a folder of its own, named as you want the environment named (a bare spec file is named "
                "after its info.title)")
        found[env.name] = (path, env)
    return {name: env for name, (_, env) in found.items()}


def load_environment(ref: str | Path, *, seed: int | None = None) -> Environment:
    """Load (memoised on path and modification time) the environment ``ref`` names."""
    path = resolve_path(ref)
    stat_target = path / ENV_FILE if (path / ENV_FILE).is_file() else path
    return _load_cached(str(path), stat_target.stat().st_mtime_ns, seed)

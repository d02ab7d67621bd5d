"""Re-executing recorded chains: reading a dataset, comparing a replay with its record.

The comparison core is pure (:func:`check_sources`, :func:`first_difference`,
:func:`compare_fingerprints`); :func:`replay_steps` drives a :class:`~toolgrad.toolbox.Toolbox`
and stops at the first place where the replay and the record disagree. Where the sandboxes
come from (in process, local processes, containers) is :class:`SandboxProvider`'s business.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from pydantic import ValidationError

from simulator.canonical import (
    MISSING,
    PointerError,
    canonical_json,
    canonical_sha256,
    first_difference,
    resolve_pointer,
    same_value,
)
from simulator.environments.environment import Environment, is_plain_name, load_environment
from simulator.errors import SimulatorError, UnknownEnvironmentError
from simulator.sandboxes.backends import running_services
from simulator.sandboxes.http import HTTPSandbox
from simulator.sandboxes.inprocess import InProcessSandbox
from simulator.sandboxes.protocol import Sandbox
from simulator.spec.confine import open_regular
from toolgrad.records import Sample, Step
from toolgrad.toolbox import Toolbox


class BenchmarkError(Exception):
    """Root of the errors benchmarks raise on purpose; the CLI prints them and exits 2."""


class DatasetError(BenchmarkError):
    """A dataset file that cannot be read: missing, or a line that is not a valid sample."""


# --- divergences ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Divergence:
    """Where a replay (or a check of the record) first disagrees with the record.

    ``field`` is one of ``status``, ``response``, ``state_hash``, ``call`` (the call could not be
    made), ``tool``, ``sources.<argument>``, ``fingerprint.<env>.<key>``, ``environment.<env>``
    or ``id``; ``pointer`` locates the difference inside a response body.
    """

    chain: int | None
    step: int | None
    field: str
    expected: Any
    got: Any
    pointer: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"chain": self.chain, "step": self.step, "field": self.field,
               "expected": self.expected, "got": self.got}
        if self.pointer is not None:
            out["pointer"] = self.pointer
        return out


def compare_fingerprints(env: str, recorded: dict[str, Any], installed: dict[str, Any]) -> Divergence | None:
    """The first key (sorted) where a recorded environment fingerprint and the installed one differ."""
    for key in sorted(set(recorded) | set(installed)):
        if key not in recorded or key not in installed or not same_value(recorded[key], installed[key]):
            return Divergence(None, None, f"fingerprint.{env}.{key}",
                              recorded.get(key, MISSING), installed.get(key, MISSING))
    return None


def check_sources(sample: Sample) -> Divergence | None:
    """The first step whose recorded argument sources do not hold (see :func:`check_step_sources`)."""
    for ci, chain in enumerate(sample.chains):
        for si in range(len(chain.steps)):
            divergence = check_step_sources(sample, ci, si)
            if divergence is not None:
                return divergence
    return None


def check_step_sources(sample: Sample, ci: int, si: int) -> Divergence | None:
    """Check each argument value of step ``si`` of chain ``ci`` recorded as taken from an earlier
    output: its pointer names a value in the arguments, the step it names comes earlier in
    replay order, and the value at the pointer in that step's recorded response equals it.
    Pure: the record against itself."""
    step = sample.chains[ci].steps[si]
    for at in sorted(step.sources):
        source = step.sources[at]
        field = f"sources.{at}"
        origin = {"chain": source.chain, "step": source.step, "pointer": source.pointer}
        try:
            argument = resolve_pointer(step.arguments, at)
        except PointerError:
            return Divergence(ci, si, field, f"an argument value at {at!r}", sorted(step.arguments))
        if not (0 <= source.chain < len(sample.chains)
                and 0 <= source.step < len(sample.chains[source.chain].steps)):
            return Divergence(ci, si, field, "a step of the sample", origin)
        if (source.chain, source.step) >= (ci, si):
            return Divergence(ci, si, field, f"a step before chain {ci} step {si}", origin)
        try:
            value = resolve_pointer(sample.chains[source.chain].steps[source.step].response, source.pointer)
        except PointerError as exc:
            return Divergence(ci, si, field, f"a value at {source.pointer!r} in chain {source.chain} "
                              f"step {source.step}", str(exc))
        if not source_matches(value, argument):
            return Divergence(ci, si, field, value, argument, pointer=source.pointer)
    return None


def source_matches(output: Any, argument: Any) -> bool:
    """An argument equals the output it was taken from: the same JSON value, or an integer
    output passed as its decimal string (a numeric id in a path: 12 and "12" are one request)."""
    if isinstance(output, int) and not isinstance(output, bool) and isinstance(argument, str):
        return argument == str(output)
    if isinstance(argument, int) and not isinstance(argument, bool) and isinstance(output, str):
        return output == str(argument)
    return same_value(output, argument)


def sample_id(sample: Sample) -> str:
    """sha256 of the canonical record without its id (how the generator names a sample)."""
    return canonical_sha256(sample.model_dump(mode="json", exclude={"id"}))


# --- replay --------------------------------------------------------------------------------------


def resolve_tool(toolbox: Toolbox, step: Step) -> str | None:
    """The toolbox's name for the step's tool: its recorded name when that names the same
    operation, else the tool with the step's environment and operation id."""
    bound = toolbox.tools.get(step.tool)
    if bound is not None and bound.env == step.env and bound.tool.operation_id == step.operation_id:
        return step.tool
    for name, candidate in toolbox.tools.items():
        if candidate.env == step.env and candidate.tool.operation_id == step.operation_id:
            return name
    return None


@dataclass(frozen=True, slots=True)
class StepReplay:
    """One replayed step: where it is, and the first disagreement with its record (if any)."""

    chain: int
    step: int
    divergence: Divergence | None


def replay_steps(sample: Sample, toolbox: Toolbox, session: str) -> Iterator[StepReplay]:
    """Re-execute the sample's chains, in order, in ``session`` (which the caller made fresh),
    yielding each step's comparison (its argument sources first, then the call); stops after
    the first divergence."""
    for ci, chain in enumerate(sample.chains):
        for si, step in enumerate(chain.steps):
            divergence = check_step_sources(sample, ci, si) or replay_step(toolbox, session, step, ci, si)
            yield StepReplay(ci, si, divergence)
            if divergence is not None:
                return


def replay_step(toolbox: Toolbox, session: str, step: Step, ci: int, si: int) -> Divergence | None:
    name = resolve_tool(toolbox, step)
    if name is None:
        return Divergence(ci, si, "tool", f"{step.env}:{step.operation_id}", None)
    result = toolbox.call(session, name, step.arguments)
    if result.error:
        return Divergence(ci, si, "call", "a call that can be made", result.error)
    if result.status != step.status:
        return Divergence(ci, si, "status", step.status, result.status)
    if canonical_json(result.body) != canonical_json(step.response):
        pointer, expected, got = first_difference(step.response, result.body) or ("", step.response, result.body)
        return Divergence(ci, si, "response", expected, got, pointer=pointer)
    if result.state_hash != step.state_hash:
        return Divergence(ci, si, "state_hash", step.state_hash, result.state_hash)
    return None


# --- reading a dataset ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatasetLine:
    line: int  # 1-based line number in the file
    text: str


MAX_LINE_BYTES = 64 * 1024 * 1024  # one sample; a longer first line is not a dataset


def read_lines(path: Path) -> tuple[str, list[DatasetLine]]:
    """The file's sha256 and its non-blank lines; :class:`DatasetError` if it cannot be read.

    Only a regular file is read (``/dev/zero`` and pipes are refused), and its first non-blank
    line must be a JSON object of at most :data:`MAX_LINE_BYTES` before the rest is read, so a
    file that is not a dataset is refused after reading at most that much."""
    try:
        fd = open_regular(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the dataset: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as file:
        head = _first_line(file, path)
        data = head + file.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(f"{path}:{line}: not UTF-8 text") from exc
    lines = [DatasetLine(i, raw) for i, raw in enumerate(text.split("\n"), start=1) if raw.strip()]
    return hashlib.sha256(data).hexdigest(), lines


def _first_line(file: BinaryIO, path: Path) -> bytes:
    """The bytes up to and including the first non-blank line, checked to open a JSON object."""
    head = chunk = b""
    while len(head) <= MAX_LINE_BYTES:
        chunk = file.readline(MAX_LINE_BYTES + 1)
        head += chunk
        if not chunk or chunk.strip():
            break
    if len(head) > MAX_LINE_BYTES:
        raise DatasetError(f"{path}: no sample within the first {MAX_LINE_BYTES:,} bytes: not a dataset "
                           "(each line must be one JSON object, a sample)")
    if chunk.strip() and not chunk.lstrip().startswith(b"{"):
        number = head.count(b"\n") + (0 if head.endswith(b"\n") else 1)
        raise DatasetError(f"{path}:{number}: not a dataset: each line must be one JSON object "
                           "of the toolgrad Sample format")
    return head


def parse_record(line: DatasetLine, path: Path | str = "") -> tuple[Sample, dict[str, Any]]:
    """One line as a :class:`Sample`, with the JSON object it was read from; :class:`DatasetError`
    naming the line when it is not a sample."""
    try:
        record = orjson.loads(line.text)
    except orjson.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{line.line}: not JSON ({exc}); each line must be one JSON object") from exc
    if not isinstance(record, dict):
        raise DatasetError(f"{path}:{line.line}: not a JSON object; each line must be one sample")
    try:
        return Sample.model_validate(record), record
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "/".join(str(p) for p in first.get("loc", ()))
        what = first.get("msg", "invalid")
        detail = f"{what} at {where}" if where else what
        raise DatasetError(
            f"{path}:{line.line}: not a valid sample ({detail}); "
            "each line must be one JSON object of the toolgrad Sample format (schema version 1)"
        ) from exc


def parse_sample(line: DatasetLine, path: Path | str = "") -> Sample:
    return parse_record(line, path)[0]


def record_id(record: dict[str, Any]) -> str:
    """sha256 of a record's canonical JSON without its ``id`` (equal to :func:`sample_id` of
    the parsed sample when the record spells out every field, as the generator writes it)."""
    return canonical_sha256({k: v for k, v in record.items() if k != "id"})


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset file's sha256 and its non-blank lines; samples are parsed on demand, so a
    long certification holds one parsed sample at a time."""

    path: Path
    sha256: str
    lines: list[DatasetLine]

    def parse(self) -> list[Sample]:
        """Every sample, in file order (:class:`DatasetError` names the first bad line)."""
        return [parse_sample(line, self.path) for line in self.lines]


def read_dataset(path: Path) -> Dataset:
    """The dataset's bytes split into lines; :class:`DatasetError` when unreadable or empty."""
    digest, lines = read_lines(path)
    if not lines:
        raise DatasetError(f"{path}: the dataset has no samples")
    return Dataset(path, digest, lines)


def recorded_env_refs(dataset: Dataset) -> dict[str, str]:
    """The environments the dataset's first sample recorded by path (your own API, not found by
    name: ``provenance.environment_paths``), resolved against the dataset's folder, that are an
    environment folder or a spec file there. Certify and eval use them when no ``--env`` says
    otherwise."""
    try:
        paths = orjson.loads(dataset.lines[0].text)["provenance"]["environment_paths"]
    except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
        return {}
    refs = {}
    for name, relative in paths.items() if isinstance(paths, dict) else ():
        target = dataset.path.resolve().parent / str(relative)
        if target.is_dir() or (target.is_file() and target.suffix in {".yaml", ".yml", ".json"}):
            refs[str(name)] = str(target)
    return refs


# --- sandboxes for samples -----------------------------------------------------------------------

BACKENDS = ("inprocess", "local", "docker")
EnvKey = tuple[str, int | None]  # (environment name, seed)


@dataclass(frozen=True, slots=True)
class ProviderPlan:
    """What a worker process needs to build the same sandboxes: picklable, no live objects."""

    backend: str
    env_refs: tuple[tuple[str, str], ...]
    urls: tuple[tuple[EnvKey, str], ...] = ()
    tokens: tuple[tuple[EnvKey, str], ...] = ()  # control API admin tokens of services that need one


class SandboxProvider:
    """Toolboxes for samples, built from each sample's recorded environment fingerprints.

    One sandbox per (environment, seed), shared by every sample that names it (each sample
    runs in its own fresh session). ``inprocess`` builds simulators in this process; ``local``
    and ``docker`` start services through :func:`simulator.sandboxes.backends.running_services` (stopped
    by :meth:`close`), or reach the ``urls`` a parent process started.
    """

    def __init__(self, backend: str = "inprocess", env_refs: dict[str, str] | None = None,
                 urls: dict[EnvKey, str] | None = None) -> None:
        if backend not in BACKENDS:
            raise BenchmarkError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.env_refs = dict(env_refs or {})
        self.urls: dict[EnvKey, str] = dict(urls or {})
        self.tokens: dict[EnvKey, str] = {}
        self._environments: dict[EnvKey, Environment] = {}
        self._sandboxes: dict[EnvKey, Sandbox] = {}
        self._toolboxes: dict[tuple[EnvKey, ...], Toolbox] = {}
        self._stack = contextlib.ExitStack()

    @classmethod
    def from_plan(cls, plan: ProviderPlan) -> SandboxProvider:
        provider = cls(plan.backend, dict(plan.env_refs), dict(plan.urls))
        provider.tokens = dict(plan.tokens)
        return provider

    def plan(self) -> ProviderPlan:
        def by_key(item: tuple[EnvKey, str]) -> tuple[str, int]:
            return item[0][0], -1 if item[0][1] is None else item[0][1]

        return ProviderPlan(self.backend, tuple(sorted(self.env_refs.items())),
                            tuple(sorted(self.urls.items(), key=by_key)), tuple(sorted(self.tokens.items(), key=by_key)))

    def __enter__(self) -> SandboxProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for sandbox in self._sandboxes.values():
            sandbox.close()
        self._sandboxes.clear()
        self._toolboxes.clear()
        self._stack.close()

    def environment(self, key: EnvKey) -> Environment:
        """The installed environment for (name, seed); SimulatorError when there is none."""
        found = self._environments.get(key)
        if found is None:
            name, seed = key
            if name not in self.env_refs and not is_plain_name(name):
                # a dataset is untrusted input: its names are looked up, never opened as paths
                raise UnknownEnvironmentError(
                    f"the dataset names environment {name!r}, which is not a plain name; "
                    f"pass --env NAME=PATH to say where it is")
            found = self._environments[key] = load_environment(self.env_refs.get(name, name), seed=seed)
        return found

    def prepare(self, keys: Iterable[EnvKey]) -> None:
        """Start (for the HTTP backends) every (environment, seed) not running yet, in one go per seed."""
        missing = sorted({k for k in keys if k not in self._sandboxes},
                         key=lambda k: (k[0], -1 if k[1] is None else k[1]))
        if not missing:
            return
        if self.backend == "inprocess":
            for key in missing:
                self._sandboxes[key] = InProcessSandbox(self.environment(key))
            return
        to_start: dict[int | None, list[str]] = {}
        for key in missing:
            if key in self.urls:
                self._sandboxes[key] = HTTPSandbox(self.urls[key], key[0], admin_token=self.tokens.get(key))
            else:
                self.environment(key)  # fail early (per sample) when it is not installed
                to_start.setdefault(key[1], []).append(key[0])
        for seed, names in to_start.items():
            refs = [self.env_refs.get(name, name) for name in names]
            handles = self._stack.enter_context(running_services(refs, backend=self.backend, seed=seed))
            for name, handle in zip(names, handles, strict=True):
                self.urls[(name, seed)] = handle.base_url
                if handle.admin_token:
                    self.tokens[(name, seed)] = handle.admin_token
                self._sandboxes[(name, seed)] = HTTPSandbox(handle.base_url, name, admin_token=handle.admin_token)

    def toolbox_for(self, fingerprints: dict[str, dict[str, Any]]) -> Toolbox | Divergence:
        """A toolbox over the sample's environments, or the first reason it cannot be trusted:
        an environment that is not installed, or a fingerprint that differs from the installed one."""
        keys: list[EnvKey] = []
        for name in sorted(fingerprints):
            seed = fingerprints[name].get("seed")
            key = (name, seed if isinstance(seed, int) and not isinstance(seed, bool) else None)
            try:
                self.environment(key)
            except SimulatorError as exc:
                said = str(exc) if not is_plain_name(name) else (
                    f"none named {name!r} here: pass --env {name}=PATH (the environment's folder or spec), "
                    "or put the folder it is in in TOOLGRAD_ENVS_DIR")
                return Divergence(None, None, f"environment.{name}", "an installed environment", said)
            keys.append(key)
        self.prepare(keys)
        for name, key in zip(sorted(fingerprints), keys, strict=True):
            divergence = compare_fingerprints(name, fingerprints[name], self._sandboxes[key].fingerprint())
            if divergence is not None:
                return divergence
        memo = tuple(keys)
        toolbox = self._toolboxes.get(memo)
        if toolbox is None:
            toolbox = self._toolboxes[memo] = Toolbox(
                {k[0]: self._sandboxes[k] for k in keys}, {k[0]: self.environment(k) for k in keys})
        return toolbox

    def installed_fingerprints(self) -> list[dict[str, Any]]:
        """The fingerprints of every sandbox used so far, sorted by environment and seed."""
        prints = [sandbox.fingerprint() for sandbox in self._sandboxes.values()]
        return sorted(prints, key=lambda fp: canonical_json(fp))

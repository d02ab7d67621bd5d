"""Re-executing recorded chains: reading a dataset, comparing a replay with its record.

The comparison core is pure (:func:`check_sources`, :func:`first_difference`,
:func:`compare_fingerprints`); :func:`replay_steps` drives a :class:`~toolgrad.toolbox.Toolbox`
and stops at the first place where the replay and the record disagree. Where the sandboxes
come from (in process, local processes, containers) is
:class:`~benchmarks.certify.sandboxes.SandboxProvider`'s business.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

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
from simulator.spec.confine import open_regular
from toolgrad.dataset.lines import traces_path
from toolgrad.records import Sample, Step

from .errors import BenchmarkError as BenchmarkError  # where callers have always found them
from .errors import DatasetError as DatasetError
from .traces import TracesSidecar

if TYPE_CHECKING:  # reading a dataset needs no simulator (a driver whose workers replay imports none)
    from toolgrad.toolbox import Toolbox

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


def read_lines(path: Path) -> list[DatasetLine]:
    """The file's non-blank lines, all in memory, read in one pass checked as :func:`scan_lines`
    checks (a dataset is read as a :class:`Dataset`, a line at a time); :class:`DatasetError`
    if it cannot be read."""
    with _open_dataset(path) as file:
        head = _first_line(file, path)
        return [DatasetLine(number, text.removesuffix("\n"))
                for number, raw in enumerate(_raw_lines(head, file), start=1)
                if (text := _text(raw, path, number)).strip()]


def scan_lines(path: Path) -> tuple[str, int]:
    """One streaming pass: the file's sha256 and its number of non-blank lines;
    :class:`DatasetError` if it cannot be read, is not UTF-8, or does not open like a dataset.

    Only a regular file is read (``/dev/zero`` and pipes are refused), and its first non-blank
    line must be a JSON object of at most :data:`MAX_LINE_BYTES` before the rest is read, so a
    file that is not a dataset is refused after reading at most that much."""
    digest = hashlib.sha256()
    count = 0
    with _open_dataset(path) as file:
        head = _first_line(file, path)
        for number, raw in enumerate(_raw_lines(head, file), start=1):
            digest.update(raw)
            if _text(raw, path, number).strip():
                count += 1
    return digest.hexdigest(), count


def iter_lines(path: Path, *, expected_sha256: str | None = None) -> Iterator[DatasetLine]:
    """The file's non-blank lines, one at a time. With ``expected_sha256`` (what
    :func:`scan_lines` found), :class:`DatasetError` after the last line when the file changed
    in between."""
    digest = hashlib.sha256()
    with _open_dataset(path) as file:
        for number, raw in enumerate(_raw_lines(b"", file), start=1):
            digest.update(raw)
            text = _text(raw, path, number)
            if text.strip():
                yield DatasetLine(number, text.removesuffix("\n"))
    if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
        raise DatasetError(f"{path}: the dataset changed while it was being read; certify a file no one writes")


def _open_dataset(path: Path) -> BinaryIO:
    try:
        fd = open_regular(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the dataset: {exc.strerror or exc}") from exc
    return os.fdopen(fd, "rb")


def _raw_lines(head: bytes, file: BinaryIO) -> Iterator[bytes]:
    """The lines of ``head`` (whole lines already read) and then of the rest of ``file``."""
    yield from head.splitlines(keepends=True)
    yield from file


def _text(raw: bytes, path: Path, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}:{number}: not UTF-8 text") from exc


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
            "each line must be one JSON object of the toolgrad Sample format"
        ) from exc


def parse_sample(line: DatasetLine, path: Path | str = "") -> Sample:
    return parse_record(line, path)[0]


def record_id(record: dict[str, Any]) -> str:
    """sha256 of a record's canonical JSON without its ``id`` (equal to :func:`sample_id` of
    the parsed sample when the record spells out every field, as the generator writes it)."""
    return canonical_sha256({k: v for k, v in record.items() if k != "id"})


@dataclass(frozen=True, slots=True)
class DatasetLines:
    """A dataset's non-blank lines, read from the file each time they are iterated (one line
    in memory at a time); ``len()`` is known from the first pass."""

    path: Path
    count: int
    sha256: str
    limit: int | None = None

    def __len__(self) -> int:
        return self.count if self.limit is None else min(self.count, self.limit)

    def __iter__(self) -> Iterator[DatasetLine]:
        lines = iter_lines(self.path, expected_sha256=self.sha256 if self.limit is None else None)
        return lines if self.limit is None else itertools.islice(lines, self.limit)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset file: its sha256 and number of samples (one streaming pass), and its lines,
    read again one at a time when iterated, so memory does not grow with the file; samples are
    parsed on demand. ``limit`` keeps only the first lines."""

    path: Path
    sha256: str
    count: int
    limit: int | None = None
    traces: TracesSidecar | None = None  # <data>.traces.jsonl, read once by the trace check

    @property
    def traces_sha256(self) -> str | None:
        """sha256 of <data>.traces.jsonl as the trace check read it; None when there is none."""
        return None if self.traces is None else self.traces.digest()

    @property
    def lines(self) -> DatasetLines:
        return DatasetLines(self.path, self.count, self.sha256, self.limit)

    def samples(self) -> Iterator[Sample]:
        """Every sample, in file order, one at a time (:class:`DatasetError` names the first bad line)."""
        return (parse_sample(line, self.path) for line in self.lines)



def read_dataset(path: Path) -> Dataset:
    """The dataset's sha256 and line count (a streaming pass), and its traces sidecar, read
    later, once, by the trace check; :class:`DatasetError` when unreadable or empty."""
    digest, count = scan_lines(path)
    if not count:
        raise DatasetError(f"{path}: the dataset has no samples")
    sidecar = TracesSidecar(traces_path(path))
    return Dataset(path, digest, count, traces=sidecar if sidecar.present else None)


def recorded_env_refs(dataset: Dataset) -> dict[str, str]:
    """The environments the dataset's first sample recorded by path (your own API, not found by
    name: ``provenance.environment_paths``), resolved against the dataset's folder, that are an
    environment folder or a spec file there. Certify and eval use them when no ``--env`` says
    otherwise."""
    try:
        paths = orjson.loads(next(iter(dataset.lines)).text)["provenance"]["environment_paths"]
    except (orjson.JSONDecodeError, KeyError, TypeError, StopIteration):
        return {}
    refs = {}
    for name, relative in paths.items() if isinstance(paths, dict) else ():
        target = dataset.path.resolve().parent / str(relative)
        if target.is_dir() or (target.is_file() and target.suffix in {".yaml", ".yml", ".json"}):
            refs[str(name)] = str(target)
    return refs

"""A dataset's lines and the files beside them: encoding, reading, and repair after a kill.

Schema 3 keeps a dataset line lean; what only some readers need lives once beside it:

* ``<data>.traces.jsonl``: one :class:`~toolgrad.records.TraceLine` per sample, in the
  dataset's order; a sample's ``trace_sha256`` is the sha256 of its trace line (canonical
  JSON, without the newline), so ``certify`` checks the sidecar line by line.
* ``<data>.tools.json``: the tool table, qualified tool name -> OpenAI tool spec for every tool
  of the run's environments (canonical JSON); a line names its candidate tools.

The generator grows the sidecar and the dataset together (:class:`~toolgrad.dataset.files.LineFiles`,
sidecar first), so a kill leaves the sidecar holding at least the dataset's lines;
:func:`repair_traces` drops the extra ones when the run resumes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from simulator.canonical import sha256_hex, strict_canonical_json
from toolgrad.records import Provenance, Sample, Trace, TraceLine
from toolgrad.settings import ToolgradError, sidecar

if TYPE_CHECKING:  # readers (certify's start-up) need neither the loop nor the toolbox
    from toolgrad.loop.sample import SampleOutcome
    from toolgrad.toolbox import Toolbox

TRACES_SUFFIX = ".traces.jsonl"
TOOLS_SUFFIX = ".tools.json"


def traces_path(data: str | Path) -> Path:
    """``data.jsonl`` -> ``data.traces.jsonl``."""
    return sidecar(data, TRACES_SUFFIX)


def tools_path(data: str | Path) -> Path:
    """``data.jsonl`` -> ``data.tools.json``."""
    return sidecar(data, TOOLS_SUFFIX)


# -- encoding -----------------------------------------------------------------------------------


def encode_sample(sample: Sample) -> bytes:
    """The sample's line, newline included."""
    return strict_canonical_json(sample.model_dump(mode="json")) + b"\n"


def sample_id(record: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a record without its ``id``."""
    body = {k: v for k, v in record.items() if k != "id"}
    return sha256_hex(strict_canonical_json(body))


def encode_trace(seed: int, trace: Trace) -> bytes:
    """The sample's line in the traces sidecar, newline included."""
    return strict_canonical_json(TraceLine(seed=seed, trace=trace).model_dump(mode="json")) + b"\n"


def trace_digest(line: bytes) -> str:
    """What a sample's ``trace_sha256`` holds for its trace line (with or without the newline)."""
    return hashlib.sha256(line.removesuffix(b"\n")).hexdigest()


def build_record(outcome: SampleOutcome, provenance: Provenance) -> tuple[Sample, bytes]:
    """The dataset record for a successful outcome (``outcome.ok``), its id computed, and its
    trace line for the sidecar. Its provenance names the fingerprints of the environments its
    chains call (``provenance`` holds the run's)."""
    record, trace_line = _record_json(outcome, provenance)
    return Sample.model_validate(record), trace_line


def _record_json(outcome: SampleOutcome, provenance: Provenance) -> tuple[dict[str, Any], bytes]:
    """:func:`build_record`'s record as JSON (``model_dump(mode="json")``, its id in), and the trace line."""
    trace_line = encode_trace(outcome.seed, outcome.trace)
    called = {step.env for chain in outcome.workflow.chains for step in chain.steps}
    draft = Sample(
        id="", seed=outcome.seed, query=outcome.workflow.query, answer=outcome.workflow.answer,
        chains=outcome.workflow.chains, candidate_tools=list(outcome.candidate_tools),
        trace_sha256=trace_digest(trace_line),
        provenance=provenance.model_copy(update={
            "cache_keys": list(outcome.cache_keys),
            "environments": {name: fp for name, fp in provenance.environments.items() if name in called}}),
        cost=outcome.cost,
    )
    record = draft.model_dump(mode="json")
    return {**record, "id": sample_id(record)}, trace_line


def record_lines(outcome: SampleOutcome, provenance: Provenance) -> tuple[bytes, bytes]:
    """(the trace line, the dataset line) of a successful outcome: the order a
    :class:`~toolgrad.dataset.files.LineFiles` of (traces, data) takes. The line is
    :func:`encode_sample` of :func:`build_record`'s sample, written from the dumped record
    itself (a record read back from its own dump dumps the same JSON; validating it again only
    cost time)."""
    record, trace_line = _record_json(outcome, provenance)
    return trace_line, strict_canonical_json(record) + b"\n"


def tool_table_bytes(toolbox: Toolbox) -> bytes:
    """The tool table of the toolbox's environments, as ``<data>.tools.json`` holds it."""
    return encode_tool_table({name: toolbox.tools[name].openai() for name in toolbox.tools})


def encode_tool_table(table: Mapping[str, dict[str, Any]]) -> bytes:
    """``<data>.tools.json``'s bytes for a table of qualified tool name -> OpenAI tool spec."""
    return strict_canonical_json(dict(table)) + b"\n"


# -- reading ------------------------------------------------------------------------------------


def complete_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(1-based number, line) of every whole line of a file, read one at a time (a trailing
    partial line is left out)."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                return
            yield number, line


def read_samples(path: str | Path, *, traces: bool = False) -> Iterator[Sample]:
    """Every sample in a dataset file, one line at a time (a trailing partial line is ignored).
    With ``traces``, a schema-3 sample's ``trace`` is filled from the sidecar, whose line must
    hash to the sample's ``trace_sha256`` (:class:`ToolgradError` otherwise, or when it is missing)."""
    sidecar_lines = complete_lines(traces_path(path)) if traces and traces_path(path).is_file() else None
    for number, line in complete_lines(path):
        try:
            sample = Sample.model_validate(orjson.loads(line))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise ToolgradError(f"{path}:{number}: not a dataset record: {exc}") from exc
        if traces and sample.trace is None:
            sample = sample.model_copy(update={"trace": _trace_of(path, number, sample, sidecar_lines)})
        yield sample


def _trace_of(path: str | Path, number: int, sample: Sample, lines: Iterator[tuple[int, bytes]] | None) -> Trace:
    if lines is None:
        raise ToolgradError(f"{path}:{number}: the trace is in {traces_path(path)}, which is missing")
    _, line = next(lines, (0, b""))
    if trace_digest(line) != sample.trace_sha256:
        raise ToolgradError(f"{traces_path(path)}:{number}: not the trace of {path}:{number} "
                            "(its sha256 differs from the line's trace_sha256)")
    return TraceLine.model_validate(orjson.loads(line)).trace


def read_tool_table(data: str | Path) -> dict[str, dict[str, Any]]:
    """The dataset's tool table (``<data>.tools.json``); empty when there is none (a schema-1 or
    -2 dataset holds its tools' specs in each line)."""
    path = tools_path(data)
    if not path.is_file():
        return {}
    try:
        table = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ToolgradError(f"{path}: not a tool table: {exc}") from exc
    if not isinstance(table, dict):
        raise ToolgradError(f"{path}: not a tool table (a JSON object of tool name -> OpenAI tool spec)")
    return table


def tool_specs(sample: Sample, table: Mapping[str, dict[str, Any]], where: str = "") -> list[dict[str, Any]]:
    """The sample's candidate tools as OpenAI specs: recorded inline (schema 1 and 2), else
    looked up in ``table``; :class:`ToolgradError` naming a tool the table lacks."""
    if sample.legacy_tool_specs:
        return list(sample.legacy_tool_specs)
    missing = [name for name in sample.candidate_tools if name not in table]
    if missing:
        raise ToolgradError(f"{where or 'sample ' + sample.id[:12]}: candidate tool {missing[0]!r} is not in the "
                            "tool table (<data>.tools.json beside the dataset, or the installed environments)")
    return [table[name] for name in sample.candidate_tools]


# -- resuming -----------------------------------------------------------------------------------


def truncate_partial(path: Path) -> int:
    """Cut a trailing partial line (a power loss, or a file written by other means); the bytes cut."""
    if not path.is_file():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "r+b") as fh:
        end = size
        while end > 0:  # back to the last newline, a block at a time
            start = max(0, end - 65536)
            fh.seek(start)
            block = fh.read(end - start)
            at = block.rfind(b"\n")
            if at >= 0:
                end = start + at + 1
                break
            end = start
        if end < size:
            fh.truncate(end)
            os.fsync(fh.fileno())
    return size - end


def repair_traces(data: Path, digests: list[str]) -> int:
    """Make the traces sidecar hold exactly the trace lines of the dataset's samples, whose
    ``trace_sha256`` are ``digests`` in file order; returns the sidecar lines dropped.

    A kill between the sidecar's commit and the dataset's leaves extra sidecar lines (the
    samples whose dataset lines were not committed): they are cut, and the run writes them
    again. Anything else (a missing sidecar, a line that is not its sample's trace) is not a
    kill's doing: :class:`ToolgradError`, write to a new output."""
    path = traces_path(data)
    truncate_partial(path)
    if not path.is_file():
        if digests:
            raise ToolgradError(f"{data} holds {len(digests)} sample(s) but their traces ({path}) are missing; "
                                "restore that file or write to a new output file")
        return 0
    keep = lines = 0
    for number, line in complete_lines(path):
        lines = number
        if number > len(digests):
            continue
        if trace_digest(line) != digests[number - 1]:
            raise ToolgradError(f"{path}:{number}: not the trace of {data}:{number} (its sha256 differs from the "
                                "line's trace_sha256); write to a new output file")
        keep += len(line)
    if lines < len(digests):
        raise ToolgradError(f"{path} holds {lines} trace(s) for {len(digests)} sample(s) in {data}; "
                            "restore it or write to a new output file")
    if lines > len(digests):
        with open(path, "r+b") as fh:
            fh.truncate(keep)
            os.fsync(fh.fileno())
    return lines - len(digests)

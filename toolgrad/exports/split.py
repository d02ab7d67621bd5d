"""Train/test splits that hold out: no test sample shares its tool-call sequence (or, with
``by="env"``, any environment) with a training sample.

The rule (docs/training.md says the same):

1. Every sample gets a *group key*. ``by="sequence"``: the ordered list of the tool names of its
   steps, chain after chain (two samples that call the same tools in the same order share a
   key, whatever their arguments). ``by="env"``: samples are linked when they use a common
   environment, and a key is one connected component of that relation.
2. Groups are ranked by ``sha256(seed, key)``, a pure function of the key and the seed.
3. Walking the groups in rank order, a group goes to *test* when it still fits under the
   target (``round(test * n)`` samples), else to *train*. The walk never splits a group, so the
   test share may fall short of the target when groups are large; the manifest records it.

The split copies each dataset line byte for byte (sample ids and certificates stay valid) and
keeps the file order within each part; each part's trace lines go to its own sidecar. Same input, fraction, rule and seed: same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from toolgrad.dataset.files import files_atomic, write_bytes_atomic, write_json_atomic
from toolgrad.dataset.lines import complete_lines, tools_path, traces_path
from toolgrad.sampling import stable_hash
from toolgrad.settings import ToolgradError

SplitBy = Literal["sequence", "env"]
SPLIT_BY: tuple[str, ...] = ("sequence", "env")
MANIFEST = "split.json"
PARTS = ("train", "test")


@dataclass(frozen=True, slots=True)
class Split:
    """Indices (file order) of the training and test samples, and what the rule saw."""

    train: tuple[int, ...]
    test: tuple[int, ...]
    groups: int  # distinct group keys
    test_groups: int
    target: int  # round(test fraction * samples)


def tool_sequence(record: dict[str, Any]) -> tuple[str, ...]:
    """The tool names of a dataset record's steps, in replay order."""
    return tuple(str(step.get("tool", "")) for chain in record.get("chains") or []
                 for step in chain.get("steps") or [])


def environments(record: dict[str, Any]) -> frozenset[str]:
    """The environments a record's steps call (its provenance's when it has no step)."""
    envs = {str(step.get("env", "")) for chain in record.get("chains") or [] for step in chain.get("steps") or []}
    return frozenset(envs or (record.get("provenance") or {}).get("environments", {}).keys())


def _env_components(records: Sequence[dict[str, Any]]) -> list[str]:
    """Per record: a key naming its connected component under "shares an environment"."""
    parent: dict[str, str] = {}

    def find(env: str) -> str:
        while parent.setdefault(env, env) != env:
            parent[env] = parent[parent[env]]
            env = parent[env]
        return env

    for record in records:
        envs = sorted(environments(record))
        for env in envs:
            find(env)
        for other in envs[1:]:
            a, b = find(envs[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    members: dict[str, set[str]] = {}
    for env in list(parent):
        members.setdefault(find(env), set()).add(env)
    keys = []
    for record in records:
        envs = sorted(environments(record))
        keys.append(",".join(sorted(members[find(envs[0])])) if envs else "")
    return keys


def group_keys(records: Sequence[dict[str, Any]], by: SplitBy) -> list[str]:
    """One key per record; records with equal keys always land in the same part."""
    if by == "env":
        return _env_components(records)
    return ["\x1f".join(tool_sequence(r)) for r in records]


def split_records(records: Sequence[dict[str, Any]], test: float, *, by: SplitBy = "sequence",
                  seed: int = 0) -> Split:
    """The split of ``records`` (see the module docstring for the rule)."""
    if not 0.0 <= test <= 1.0:
        raise ToolgradError(f"the test share must be between 0 and 1, got {test}")
    keys = group_keys(records, by)
    sizes: dict[str, int] = {}
    for key in keys:
        sizes[key] = sizes.get(key, 0) + 1
    target = round(test * len(records))
    ranked = sorted(sizes, key=lambda k: (stable_hash("split", by, seed, k), k))
    in_test: set[str] = set()
    filled = 0
    for key in ranked:
        if filled + sizes[key] <= target:
            in_test.add(key)
            filled += sizes[key]
    test_idx = tuple(i for i, k in enumerate(keys) if k in in_test)
    train_idx = tuple(i for i, k in enumerate(keys) if k not in in_test)
    return Split(train_idx, test_idx, len(sizes), len(in_test), target)


def _lines(path: Path) -> Iterator[bytes]:
    """The file's complete non-blank lines, one at a time (a trailing partial line is left out,
    as everywhere)."""
    if not path.is_file():
        raise ToolgradError(f"{path}: no such dataset file")
    return (line for _, line in complete_lines(path) if line.strip())


def _parse(path: Path, number: int, line: bytes) -> dict[str, Any]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ToolgradError(f"{path}:{number}: not JSON: {exc}") from exc
    if not isinstance(record, dict) or not isinstance(record.get("chains"), list):
        raise ToolgradError(f"{path}:{number}: not a dataset record (no 'chains' list)")
    # what the split reads (_slim) has the types it reads it as: a stranger's line that has not
    # is named, not a TypeError
    provenance = record.get("provenance") or {}
    if not isinstance(record.get("id", ""), str) or not isinstance(provenance, dict) \
            or not isinstance(provenance.get("environments") or {}, dict):
        raise ToolgradError(f"{path}:{number}: not a dataset record (its id is not a string, or its "
                            "provenance.environments is not an object)")
    for chain in record["chains"]:
        steps = chain.get("steps") or [] if isinstance(chain, dict) else None
        if not isinstance(steps, list) or not all(
                isinstance(step, dict) and isinstance(step.get("tool", ""), str) and isinstance(step.get("env", ""), str)
                for step in steps):
            raise ToolgradError(f"{path}:{number}: not a dataset record (a chain's steps are not objects "
                                "naming their tool and environment)")
    return record


def _slim(record: dict[str, Any]) -> dict[str, Any]:
    """What the split rule and the manifest read of a record (so the first pass keeps little)."""
    return {"id": record.get("id", ""),
            "chains": [{"steps": [{"tool": step.get("tool", ""), "env": step.get("env", "")}
                                  for step in chain.get("steps") or [] if isinstance(step, dict)]}
                       for chain in record["chains"] if isinstance(chain, dict)],
            "provenance": {"environments": dict.fromkeys((record.get("provenance") or {}).get("environments") or {})}}


def _first_pass(source: Path) -> tuple[list[dict[str, Any]], str]:
    """Every record's slim form and the sha256 of the lines, a line at a time."""
    digest = hashlib.sha256()
    records = []
    for number, line in enumerate(_lines(source), 1):
        digest.update(line)
        records.append(_slim(_parse(source, number, line)))
    return records, digest.hexdigest()


def split_file(source: str | Path, output: str | Path, test: float, *, by: SplitBy = "sequence",
               seed: int = 0) -> dict[str, Any]:
    """Write ``train.jsonl``, ``test.jsonl`` and ``split.json`` (the manifest, returned) into
    the directory ``output`` (created if missing; its parent must exist). The dataset is read
    in two streaming passes (the rule's keys, then the lines). When the dataset has a traces
    sidecar and a tool table, each part gets its own (``train.traces.jsonl``, ``train.tools.json``)."""
    source, out = Path(source), Path(output)
    if by not in SPLIT_BY:
        raise ToolgradError(f"--by must be one of {', '.join(SPLIT_BY)}, got {by!r}")
    records, source_sha256 = _first_pass(source)
    if not records:
        raise ToolgradError(f"{source}: no samples to split")
    split = split_records(records, test, by=by, seed=seed)
    if not out.parent.is_dir():
        raise ToolgradError(f"output directory {out.parent} does not exist")
    out.mkdir(exist_ok=True)
    parts = {"train": split.train, "test": split.test}
    _write_parts(source, out, set(split.test))
    manifest = {
        "source": source.name,
        "source_sha256": source_sha256,
        "rule": by, "seed": seed, "test_fraction": test, "target_test_samples": split.target,
        "samples": {name: len(indices) for name, indices in parts.items()},
        "groups": {"total": split.groups, "test": split.test_groups},
        "ids": {name: [str(records[i].get("id", "")) for i in indices] for name, indices in parts.items()},
    }
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


def _write_parts(source: Path, out: Path, test: set[int]) -> None:
    """The second pass: each line (and its trace line) to its part, byte for byte, in file order."""
    sidecar = traces_path(source)
    paths = [out / f"{name}.jsonl" for name in PARTS]
    if sidecar.is_file():
        paths = [traces_path(p) for p in paths] + paths  # sidecars renamed first, as the generator commits
    with files_atomic(paths) as handles:
        traces = complete_lines(sidecar) if sidecar.is_file() else None
        for index, line in enumerate(_lines(source)):
            part = 1 if index in test else 0
            handles[-2 + part].write(line)
            if traces is not None:
                _, trace = next(traces, (0, b""))
                if not trace:
                    raise ToolgradError(f"{sidecar} has fewer lines than {source} has samples")
                handles[part].write(trace)
    table = tools_path(source)
    if table.is_file():
        tools = table.read_bytes()  # once, for every part
        for name in PARTS:
            write_bytes_atomic(tools_path(out / f"{name}.jsonl"), tools)


def overlap(train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]], by: SplitBy) -> set[Any]:
    """What a test record shares with the training records under ``by`` (empty for a split
    that holds out): tool sequences, or environments."""
    if by == "env":
        return set().union(*map(environments, train)) & set().union(*map(environments, test))
    return {tool_sequence(r) for r in train} & {tool_sequence(r) for r in test}

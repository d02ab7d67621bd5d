"""What certification catches: samples broken on purpose, one kind of break at a time, and the
share of them ``certify`` fails, by the check meant to catch each kind.

    toolgrad bench mutations [--env adafruit --env baskets --env crm] [--samples 200]
        [--data DATA] [--workdir DIR] [--json]

The offline generator writes ``--samples`` samples (or ``--data`` is read); the dataset must
certify whole first (the control row), or the other rows would mean nothing. Then, for each
kind below, every sample the kind applies to is broken once (which value is broken is chosen
from sha256 of the kind and the sample's seed, so a run is reproducible), its ``id`` is computed
again (as anyone who edits a line and rehashes it would: the id check alone would catch
everything otherwise), and the broken dataset is certified in process. A row counts the broken
samples that failed any check (``caught``) and the target check (``by target``); an escape is a
broken sample that passed every check.

=================  ========================================================  ==================
kind               the break                                                 target
=================  ========================================================  ==================
answer-quoted      a value the answer quotes, changed                        grounded
answer-number      a number the answer states outside quotes, plus one       grounded
query-value        an argument value the query states, that no earlier       solvable
                   response holds, replaced by "the usual one"
argument           a string a call sends, changed (not a credential, not     replay or solvable
                   a value the schema fixes: those change no validity)
response           a string of a recorded response, changed                  replay
last-step          the last call of a chain of several, dropped              grounded or coherent
duplicate          every line twice                                          unique
=================  ========================================================  ==================

Escapes are what a deterministic check cannot see, and the figures say how often: a number off
by one is often some other number a response holds (a count of 6 where a list of 6 exists), and
a dropped write leaves an answer that only restates ids earlier responses hold. ``certify
--judge`` asks a model what these checks cannot.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks.certify.certificate import certify_file
from benchmarks.certify.replay import read_dataset, record_id, recorded_env_refs, resolve_tool
from simulator.canonical import sha256_hex
from toolgrad.dataset.lines import tools_path, traces_path
from toolgrad.dataset.runner import generate_dataset
from toolgrad.json_values import leaves
from toolgrad.records import Step
from toolgrad.settings import GenerateSettings
from toolgrad.toolbox import Toolbox
from toolgrad.validity.checks import exemption
from toolgrad.validity.statements import Text, answer_values, number_of
from toolgrad.validity.tool_terms import toolbox_terms

DEFAULT_ENVS = ("adafruit", "baskets", "crm")
Record = dict[str, Any]
# a break of a record (kind, exemptions): the broken record, and what was broken (None when the
# kind does not apply)
Break = Callable[[Record, str, "Exemptions"], "tuple[Record, str] | None"]


class Exemptions:
    """Whether a value a call sends needs no statement (:func:`toolgrad.validity.checks.exemption`:
    a credential, a value the tool's schema fixes, a blank): changing one, or leaving it
    unstated, leaves a valid sample, so no break touches one. Read from the dataset's
    environments, as certify reads them."""

    def __init__(self, data: Path) -> None:
        refs = recorded_env_refs(read_dataset(data))
        names = sorted({step["env"] for line in data.read_bytes().splitlines() if line.strip()
                        for chain in orjson.loads(line)["chains"] for step in chain["steps"]})
        box = Toolbox.in_process([refs.get(name, name) for name in names])
        self._terms = toolbox_terms(box, lambda step: resolve_tool(box, step))

    def __call__(self, step: Record, pointer: str, value: Any) -> bool:
        return bool(exemption(self._terms(Step.model_validate(step)), pointer, value))


def _pick(options: Sequence[Any], kind: str, record: Record) -> Any:
    """One of ``options``, chosen from sha256 of the kind and the sample's seed (not its id,
    which changes with the code's version in its provenance: two versions break the same values)."""
    return options[int(sha256_hex(f"{kind}|{record['seed']}".encode())[:16], 16) % len(options)]


def _set(document: Any, pointer: str, value: Any) -> None:
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    for token in tokens[:-1]:
        document = document[int(token) if isinstance(document, list) else token]
    document[int(tokens[-1]) if isinstance(document, list) else tokens[-1]] = value


def _string_leaves(record: Record, field: str, exempt: Exemptions | None = None) -> list[tuple[int, int, str, str]]:
    """(chain, step, pointer, value) of the non-blank strings of each step's ``field``; with
    ``exempt``, only those a user must state (arguments)."""
    return [(c, s, pointer, value) for c, chain in enumerate(record["chains"])
            for s, step in enumerate(chain["steps"]) for pointer, value in leaves(step[field])
            if isinstance(value, str) and value.strip() and (exempt is None or not exempt(step, pointer, value))]


def answer_quoted(record: Record, kind: str, exempt: Exemptions) -> tuple[Record, str] | None:
    quoted = [v.text for v in answer_values(record["answer"]) if v.quoted]
    if not quoted:
        return None
    value = _pick(quoted, kind, record)
    for quote in ("'", '"', "`"):
        if f"{quote}{value}{quote}" in record["answer"]:
            record["answer"] = record["answer"].replace(f"{quote}{value}{quote}", f"{quote}{value}-x{quote}", 1)
            return record, f"{value!r} -> {value + '-x'!r}"
    return None


def answer_number(record: Record, kind: str, exempt: Exemptions) -> tuple[Record, str] | None:
    numbers = [m for m in re.finditer(r"(?<![\w.'-])\d+(?![\w.'-]|\.\d)", record["answer"])
               if number_of(m.group()) is not None and not _inside_quotes(record["answer"], m.start())]
    if not numbers:
        return None
    match = _pick(numbers, kind, record)
    new = str(int(match.group()) + 1)
    record["answer"] = record["answer"][:match.start()] + new + record["answer"][match.end():]
    return record, f"{match.group()} -> {new}"


def _inside_quotes(text: str, at: int) -> bool:
    return any(start <= at < end for start, end in (m.span() for m in re.finditer(r"'[^'\n]*'", text)))


def query_value(record: Record, kind: str, exempt: Exemptions) -> tuple[Record, str] | None:
    """A quoted argument value no earlier response holds, taken out of the query where that
    leaves it unstated (not where it is also part of another stated value: "Elon" of "Elon Musk")."""
    steps = [step for chain in record["chains"] for step in chain["steps"]]
    candidates = set()
    for c, s, _, value in _string_leaves(record, "arguments", exempt):
        at = sum(len(chain["steps"]) for chain in record["chains"][:c]) + s
        earlier = orjson.dumps([step["response"] for step in steps[:at]])
        if (len(value) >= 3 and f"'{value}'" in record["query"] and orjson.dumps(value)[1:-1] not in earlier
                and not Text.of(record["query"].replace(f"'{value}'", "the usual one")).states(value)):
            candidates.add(value)
    if not candidates:
        return None
    value = _pick(sorted(candidates), kind, record)
    record["query"] = record["query"].replace(f"'{value}'", "the usual one")
    return record, f"{value!r} no longer stated"


def _changed_leaf(field: str) -> Break:
    def change(record: Record, kind: str, exempt: Exemptions) -> tuple[Record, str] | None:
        found = _string_leaves(record, field, exempt if field == "arguments" else None)
        if not found:
            return None
        c, s, pointer, value = _pick(found, kind, record)
        step = record["chains"][c]["steps"][s]
        if pointer:
            _set(step[field], pointer, value + "x")
        else:  # a response that is one string
            step[field] = value + "x"
        return record, f"chain {c} step {s} {field} {pointer}: {value!r} -> {value + 'x'!r}"
    return change


def last_step(record: Record, kind: str, exempt: Exemptions) -> tuple[Record, str] | None:
    chains = [c for c, chain in enumerate(record["chains"]) if len(chain["steps"]) > 1]
    if not chains:
        return None
    c = _pick(chains, kind, record)
    dropped = record["chains"][c]["steps"].pop()
    return record, f"chain {c}: {dropped['operation_id']} dropped"


# kind -> (the break, the checks meant to catch it)
KINDS: dict[str, tuple[Break, tuple[str, ...]]] = {
    "answer-quoted": (answer_quoted, ("grounded",)),
    "answer-number": (answer_number, ("grounded",)),
    "query-value": (query_value, ("solvable",)),
    "argument": (_changed_leaf("arguments"), ("replay", "solvable")),
    "response": (_changed_leaf("response"), ("replay",)),
    "last-step": (last_step, ("grounded", "coherent")),
}


def _copy_tools(data: Path, target: Path) -> None:
    if tools_path(data).is_file():
        shutil.copyfile(tools_path(data), tools_path(target))


def write_broken(data: Path, target: Path, kind: str, exempt: Exemptions) -> dict[str, str]:
    """``data`` with each sample ``kind`` applies to broken (its id computed again) at ``target``,
    the traces sidecar and tool table beside it; {new id: what was broken}."""
    broken: dict[str, str] = {}
    lines = []
    for line in data.read_bytes().splitlines():
        if not line.strip():
            continue
        record = orjson.loads(line)
        result = KINDS[kind][0](record, kind, exempt)
        if result is not None:
            record, what = result
            record["id"] = record_id({k: v for k, v in record.items() if k != "id"})
            broken[record["id"]] = what
        lines.append(orjson.dumps(record) + b"\n")
    target.write_bytes(b"".join(lines))
    if traces_path(data).is_file():
        shutil.copyfile(traces_path(data), traces_path(target))
    _copy_tools(data, target)
    return broken


def write_duplicated(data: Path, target: Path) -> int:
    """Every line (and its trace line) twice; the number of repeated lines."""
    lines = [line for line in data.read_bytes().splitlines(keepends=True) if line.strip()]
    target.write_bytes(b"".join(line for line in lines for _ in range(2)))
    if traces_path(data).is_file():
        traces = traces_path(data).read_bytes().splitlines(keepends=True)
        traces_path(target).write_bytes(b"".join(line for line in traces for _ in range(2)))
    _copy_tools(data, target)
    return len(lines)


def _row(kind: str, targets: tuple[str, ...], samples: int, verdicts: list[Any]) -> dict[str, Any]:
    failed = [[name for name, check in v.checks.items() if not check.ok] for v in verdicts]
    return {"kind": kind, "target": " or ".join(targets), "samples": samples,
            "caught": sum(1 for f in failed if f),
            "by_target": sum(1 for f in failed if any(t in f for t in targets))}


def measure(data: Path, work: Path) -> dict[str, Any]:
    control = certify_file(data)
    rows: list[dict[str, Any]] = [{"kind": "none (control)", "target": "-", "samples": control.sample_count,
                                   "caught": control.sample_count - control.passed, "by_target": 0}]
    if control.passed != control.sample_count:
        return {"rows": rows, "escapes": {}, "error": "the dataset does not certify whole; nothing to break"}
    escapes: dict[str, list[dict[str, str]]] = {}
    exempt = Exemptions(data)
    for kind, (_, targets) in KINDS.items():
        target = work / f"{kind}.jsonl"
        broken = write_broken(data, target, kind, exempt)
        verdicts = [v for v in certify_file(target).samples if v.id in broken]
        rows.append(_row(kind, targets, len(broken), verdicts))
        escapes[kind] = [{"id": v.id, "broken": broken[v.id]} for v in verdicts if v.ok]
    target = work / "duplicate.jsonl"
    repeated = write_duplicated(data, target)
    duplicates = [v for v in certify_file(target).samples if v.line % 2 == 0]
    rows.append(_row("duplicate", ("unique",), repeated, duplicates))
    return {"rows": rows, "escapes": escapes}


def _table(rows: list[dict[str, Any]]) -> str:
    head = f"{'kind':<16} {'target':<20} {'samples':>8} {'caught':>8} {'by target':>10} {'escaped':>8}"
    out = [head]
    for row in rows:
        escaped = "-" if row["kind"].startswith("none") else str(row["samples"] - row["caught"])
        share = f"{row['caught'] / row['samples']:.1%}" if row["samples"] and not row["kind"].startswith("none") \
            else ""
        out.append(f"{row['kind']:<16} {row['target']:<20} {row['samples']:>8} {row['caught']:>8} "
                   f"{row['by_target']:>10} {escaped:>8}  {share}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--env", action="append", default=None,
                        help="environment (repeat); default: " + ", ".join(DEFAULT_ENVS))
    parser.add_argument("--samples", type=int, default=200, help="samples the generator writes")
    parser.add_argument("--data", type=Path, default=None, help="break this dataset instead of generating one")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the broken datasets go (default: a temporary directory, removed afterwards)")
    parser.add_argument("--json", action="store_true", help="print the rows and every escape as one JSON object")
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="toolgrad-bench-mutations-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        data = args.data
        if data is None:
            data = work / "data.jsonl"
            for stale in (data, traces_path(data)):
                stale.unlink(missing_ok=True)
            generate_dataset(GenerateSettings(envs=args.env or list(DEFAULT_ENVS), n=args.samples, seed=0,
                                              output=str(data)))
        result = measure(data, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"dataset: {data if args.data else f'{args.samples} offline samples over ' + ', '.join(args.env or DEFAULT_ENVS)}")
        print(_table(result["rows"]))
        for kind, found in result["escapes"].items():
            for escape in found[:2]:
                print(f"  escaped {kind}: {escape['broken']}")
    if "error" in result:
        print(result["error"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Exports of a dataset to training formats: OpenAI chat fine-tuning, the paper's single-turn
call lists (with irrelevance negatives), BFCL's own layout (:mod:`toolgrad.exports.bfcl`) and a
Hugging Face dataset repository (:mod:`toolgrad.exports.hf`).

Every choice (distractor tools, which samples become negatives) is drawn from
``sha256(seed, sample id, ...)``, so an export is a pure function of (dataset, settings).

* ``openai``: one JSON object per line, ``{"messages": [...], "tools": [...]}``: the user query,
  one assistant turn per call (``tool_calls`` with a deterministic id), each result as a
  ``tool`` message (``{"status": ..., "body": ...}``, what the model saw at generation time),
  and the final answer. ``tools`` holds the sample's tools plus distractors, shuffled.
* ``calls``: one object per line, ``{"id", "messages", "tools", "target", "negative"}``: a system
  prompt listing the candidate tools (relevant ones plus distractors), the query, and the
  assistant's calls as JSON ``[{"name": ..., "arguments": {...}}]``. ``round(negatives * N)``
  samples (chosen by hash) become irrelevance negatives: their relevant tools are removed
  from the candidates and the target is ``[]``.
  ``toolgrad eval-calls`` reads it; BFCL's own tools do not (use ``bfcl`` for those).
* ``bfcl``: a directory in BFCL's layout, see :mod:`toolgrad.exports.bfcl`.
* ``hf``: a dataset repository (nested messages and tools, splits, a dataset card), see
  :mod:`toolgrad.exports.hf`.

Distractors come from the dataset's tool table (``<data>.tools.json``: every tool of its
environments), from every tool of the dataset's environments when those load by name with the
recorded spec hash (shipped environments), and from the tools schema-1 and -2 lines hold.
Every export reads the dataset in two streaming passes (ids and tools, then rows), so memory
does not grow with its size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from simulator.canonical import canonical_json
from simulator.environments.environment import load_environment
from simulator.errors import SimulatorError
from toolgrad.dataset.files import write_lines_atomic
from toolgrad.dataset.lines import read_samples, read_tool_table, tool_specs
from toolgrad.records import Sample
from toolgrad.sampling import stable_hash, stable_sample, stable_shuffle
from toolgrad.settings import ExportSettings, ToolgradError
from toolgrad.toolbox import Toolbox

SYSTEM_PROMPT = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. "
    "Based on the question, make one or more function calls to achieve the purpose. If none of the "
    "functions can be used, return an empty list. Reply with only a JSON list of calls, each "
    '{{"name": <function name>, "arguments": {{...}}}}, in the order they must run.\n\n'
    "Here is the list of functions you can invoke, in JSON format:\n{tools}"
)


def _dumps(value: Any) -> str:
    return canonical_json(value).decode()


def tool_name(spec: dict[str, Any]) -> str:
    return str(spec.get("function", {}).get("name", ""))


def calls_of(sample: Sample) -> list[dict[str, Any]]:
    """The sample's calls in replay order, as ``{"name", "arguments"}``."""
    return [{"name": s.tool, "arguments": s.arguments} for s in sample.steps()]


def tool_pool(samples: Iterable[Sample], table: Mapping[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Tool name -> OpenAI spec for every tool distractors may be drawn from: the dataset's tool
    table (schema 3 and 4), the specs schema-1 and -2 lines hold, and the tools of the dataset's
    environments when they are installed as recorded. ``samples`` is read once, in order."""
    pool: dict[str, dict[str, Any]] = dict(table or {})
    groups: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {}
    for sample in samples:
        for spec in sample.legacy_tool_specs:
            pool.setdefault(tool_name(spec), spec)
        # schema 4: a line holds the fingerprints of the environments its chains call
        groups.setdefault(tuple(sorted(sample.provenance.generator.get("environments", []))), {}).update(
            sample.provenance.environments)
    for names, fingerprints in sorted(groups.items()):
        try:
            envs = {n: load_environment(n) for n in names}
        except (SimulatorError, OSError):
            continue
        if any(envs[n].spec.sha256 != fingerprints.get(n, {}).get("spec_sha256") for n in names):
            continue
        box = Toolbox({}, envs)  # tool lists only: no sandbox is started
        for name in box.names():
            pool.setdefault(name, box.tools[name].openai())
    return pool


def candidates_for(sample: Sample, pool: dict[str, dict[str, Any]], distractors: int, seed: int,
                   *, negative: bool = False) -> list[dict[str, Any]]:
    relevant = set(sample.candidate_tools)
    others = sorted(n for n in pool if n not in relevant)
    picked = [pool[n] for n in stable_sample(others, distractors, "distractors", seed, sample.id)]
    tools = picked if negative else [*tool_specs(sample, pool), *picked]
    return stable_shuffle(tools, "order", seed, sample.id, key=tool_name)


def call_id(sample: Sample, index: int) -> str:
    return "call_" + stable_hash("call", sample.id, index)[:24]


def openai_record(sample: Sample, tools: list[dict[str, Any]]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": sample.query}]
    for index, step in enumerate(sample.steps()):
        cid = call_id(sample, index)
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": step.tool, "arguments": _dumps(step.arguments)}}]})
        messages.append({"role": "tool", "tool_call_id": cid,
                         "content": _dumps({"status": step.status, "body": step.response})})
    messages.append({"role": "assistant", "content": sample.answer})
    return {"messages": messages, "tools": tools}


def bfcl_record(sample: Sample, tools: list[dict[str, Any]], *, negative: bool) -> dict[str, Any]:
    target = [] if negative else calls_of(sample)
    system = SYSTEM_PROMPT.format(tools=_dumps([t["function"] for t in tools]))
    return {
        "id": sample.id,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": sample.query},
                     {"role": "assistant", "content": _dumps(target)}],
        "tools": [tool_name(t) for t in tools],
        "target": target,
        "negative": negative,
    }


def negative_ids(samples: Iterable[Sample | str], rate: float, seed: int) -> set[str]:
    """The ids of the samples (or ids) that become irrelevance negatives: ``round(rate * N)``, by hash."""
    ids = [s if isinstance(s, str) else s.id for s in samples]
    return set(stable_sample(ids, round(rate * len(ids)), "negatives", seed))


def iter_rows(samples: Iterable[Sample], pool: dict[str, dict[str, Any]], negatives: set[str],
              settings: ExportSettings) -> Iterator[dict[str, Any]]:
    """The export's rows (``openai`` or ``calls``), one sample at a time."""
    for sample in samples:
        if settings.format == "calls":
            neg = sample.id in negatives
            tools = candidates_for(sample, pool, settings.distractors, settings.seed, negative=neg)
            yield bfcl_record(sample, tools, negative=neg)
        else:
            yield openai_record(sample, candidates_for(sample, pool, settings.distractors, settings.seed))


def scan_dataset(source: Path) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The first of an export's two streaming passes: every sample's id (in order) and the
    distractor pool (:func:`tool_pool`)."""
    ids: list[str] = []

    def samples() -> Iterator[Sample]:
        for sample in read_samples(source):
            ids.append(sample.id)
            yield sample

    pool = tool_pool(samples(), read_tool_table(source))
    return ids, pool


def export_dataset(settings: ExportSettings) -> int:
    """Write the export; returns the number of records (items, for bfcl; rows over all splits,
    for hf)."""
    if settings.format == "bfcl":
        from .bfcl import export_bfcl

        return sum(export_bfcl(settings)["counts"].values())
    if settings.format == "hf":
        from .hf import export_hf

        return sum(export_hf(settings).values())
    source = Path(settings.input)
    if not source.is_file():
        raise ToolgradError(f"{source}: no such dataset file")
    out = Path(settings.output)
    if not out.parent.exists():
        raise ToolgradError(f"output directory {out.parent} does not exist")
    ids, pool = scan_dataset(source)
    negatives = negative_ids(ids, settings.negatives, settings.seed) if settings.format == "calls" else set()
    rows = iter_rows(read_samples(source), pool, negatives, settings)
    write_lines_atomic(out, (canonical_json(row) + b"\n" for row in rows))
    return len(ids)

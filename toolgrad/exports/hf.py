"""The Hugging Face export: a dataset repository as ``datasets.load_dataset(DIR)`` and TRL read it.

Layout (what the Hub calls a dataset repo)::

    OUT/README.md          the dataset card: YAML metadata (licences, source environments,
                           generator config, certificate and dataset hashes, splits, features)
    OUT/data/train.jsonl   one conversation per line
    OUT/data/test.jsonl    (when the input is a split directory from ``toolgrad split``)

Each line is ``{"id", "seed", "query", "answer", "environments", "num_calls", "messages",
"tools"}``. ``messages`` and ``tools`` are nested, in the chat format TRL and transformers'
chat templates take directly: a system message (the prompt ``toolgrad eval`` gives a model
under test), the user query, per step an assistant message with one ``tool_calls`` entry
(``arguments`` a JSON object, as transformers' templates expect) and the ``tool`` message with
``{"status", "body"}`` as JSON text, then the final answer. ``tools`` are OpenAI function specs:
the sample's own tools plus ``distractors`` more, in a seeded order. The card declares both
columns as lists of ``json`` (``datasets.Json``), so tool schemas of any shape share one file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from simulator.canonical import canonical_json
from simulator.environments.environment import load_environment
from simulator.errors import SimulatorError
from toolgrad.agent_prompt import AGENT_SYSTEM_PROMPT
from toolgrad.dataset.files import write_lines_atomic, write_text_atomic
from toolgrad.dataset.lines import read_samples, read_tool_table
from toolgrad.records import Sample
from toolgrad.settings import ExportSettings, ToolgradError

from .openai import call_id, candidates_for, tool_pool
from .split import MANIFEST, PARTS

FEATURES: list[dict[str, Any]] = [
    {"name": "id", "dtype": "string"},
    {"name": "seed", "dtype": "int64"},
    {"name": "query", "dtype": "string"},
    {"name": "answer", "dtype": "string"},
    {"name": "environments", "list": "string"},
    {"name": "num_calls", "dtype": "int64"},
    {"name": "messages", "list": "json"},
    {"name": "tools", "list": "json"},
]


def conversation(sample: Sample, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """One training row: the sample as a nested chat with its tools."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": AGENT_SYSTEM_PROMPT},
                                      {"role": "user", "content": sample.query}]
    for index, step in enumerate(sample.steps()):
        cid = call_id(sample, index)
        messages.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": step.tool, "arguments": step.arguments}}]})
        messages.append({"role": "tool", "tool_call_id": cid, "name": step.tool,
                         "content": canonical_json({"status": step.status, "body": step.response}).decode()})
    messages.append({"role": "assistant", "content": sample.answer})
    return {"id": sample.id, "seed": sample.seed, "query": sample.query, "answer": sample.answer,
            "environments": sorted({s.env for s in sample.steps()}), "num_calls": len(sample.steps()),
            "messages": messages, "tools": tools}


def split_inputs(source: Path) -> dict[str, Path]:
    """Split name -> dataset file: a ``toolgrad split`` directory gives train and test, a
    dataset file gives train alone."""
    if source.is_dir():
        parts = {name: source / f"{name}.jsonl" for name in PARTS}
        missing = [str(p) for p in parts.values() if not p.is_file()]
        if missing:
            raise ToolgradError(f"{source}: not a split directory (missing {', '.join(missing)}); "
                                "make one with `toolgrad split DATA -o DIR`")
        return parts
    if not source.is_file():
        raise ToolgradError(f"{source}: no such dataset file or split directory")
    return {"train": source}


def _licence_id(text: str) -> str:
    """An environment's licence as a Hub licence id: 'CC-BY-4.0 (...)' -> 'cc-by-4.0'."""
    return text.split(" ")[0].strip().lower() if text.strip() else "other"


@dataclass(slots=True)
class CardFacts:
    """What the dataset card says of the samples, gathered while they stream by (:meth:`observe`)."""

    counts: dict[str, int] = field(default_factory=dict)  # split -> rows
    spec_sha256: dict[str, str] = field(default_factory=dict)  # env -> the first recorded spec sha256
    generator: dict[str, Any] | None = None  # the first sample's generator config
    llm: set[str] = field(default_factory=set)

    def observe(self, split: str, samples: Iterable[Sample]) -> Iterator[Sample]:
        """``samples``, passed on one at a time, noted on the way."""
        self.counts.setdefault(split, 0)
        for sample in samples:
            self.counts[split] += 1
            for name, fingerprint in sample.provenance.environments.items():
                self.spec_sha256.setdefault(name, fingerprint.get("spec_sha256", ""))
            if self.generator is None:
                self.generator = sample.provenance.generator
            self.llm.add(sample.provenance.llm)
            yield sample


def dataset_card(facts: CardFacts, files: dict[str, Path], sources: dict[str, Path],
                 certificate: dict[str, Any] | None, settings: ExportSettings) -> str:
    """README.md: YAML metadata the Hub and ``datasets`` read, then a short description."""
    names = sorted(facts.spec_sha256)
    licences: dict[str, str] = {}
    for name in names:
        try:
            licences[name] = load_environment(name).licence
        except (SimulatorError, OSError):
            licences[name] = ""
    generator = facts.generator or {}
    meta: dict[str, Any] = {
        "license": sorted({_licence_id(v) for v in licences.values()}) or ["other"],
        "pretty_name": "toolgrad-kit tool-use conversations",
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["tool-use", "function-calling", "toolgrad", "synthetic"],
        "configs": [{"config_name": "default", "data_files": [
            {"split": name, "path": f"data/{name}.jsonl"} for name in files]}],
        "dataset_info": {"features": FEATURES, "splits": [
            {"name": name, "num_examples": count} for name, count in facts.counts.items()]},
        "toolgrad": {
            "source_environments": {n: {"licence": licences[n], "spec_sha256": facts.spec_sha256[n]} for n in names},
            "generator": generator,
            "llm": sorted(facts.llm),
            "datasets_sha256": {name: _file_sha256(path) for name, path in sources.items()},
            "certificate": certificate or {},
            "export": {"distractors": settings.distractors, "seed": settings.seed},
        },
    }
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    counts = ", ".join(f"{count} {name}" for name, count in facts.counts.items())
    return (f"---\n{head}---\n\n# toolgrad-kit tool-use conversations\n\n"
            f"{counts} conversations generated answer-first by toolgrad-kit against deterministic "
            f"simulations of {', '.join(names) or 'no environment'}; every chain of tool calls was executed "
            "and re-executed (certified) before export.\n\n"
            "Each row holds `messages` (system prompt, user query, one assistant tool call and its tool "
            "result per step, final answer) and `tools` (OpenAI function specs: the sample's tools plus "
            "distractors). Load with `datasets.load_dataset(\"path/to/this/dir\")`.\n\n"
            "The API specifications belong to their owners under the licences listed in the metadata "
            "(`toolgrad.source_environments`); the data is simulated, not real user data.\n")


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:  # a block at a time: a dataset may not fit in memory
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _certificate_of(path: Path) -> dict[str, Any] | None:
    """The pass rate and dataset hash of ``<data>.certificate.json`` beside a dataset, if any."""
    cert = path.with_name(path.name.removesuffix(".jsonl") + ".certificate.json")
    if not cert.is_file():
        return None
    try:
        data = orjson.loads(cert.read_bytes())
    except orjson.JSONDecodeError:
        return None
    return {"file": cert.name, "sha256": hashlib.sha256(cert.read_bytes()).hexdigest(),
            "dataset_sha256": data.get("dataset_sha256"), "pass_rate": data.get("pass_rate")}


def export_hf(settings: ExportSettings) -> dict[str, int]:
    """Write the dataset repository (see the module docstring); returns rows per split."""
    source, out = Path(settings.input), Path(settings.output)
    sources = split_inputs(source)
    if not out.parent.is_dir():
        raise ToolgradError(f"output directory {out.parent} does not exist")
    table: dict[str, dict[str, Any]] = {}
    for path in sources.values():
        table.update(read_tool_table(path))
    facts = CardFacts()  # the first streaming pass: the distractor pool and what the card says
    pool = tool_pool((s for name, path in sources.items() for s in facts.observe(name, read_samples(path))), table)
    (out / "data").mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for name, path in sources.items():  # the second: the rows, a line at a time
        rows = (conversation(s, candidates_for(s, pool, settings.distractors, settings.seed))
                for s in read_samples(path))
        files[name] = out / "data" / f"{name}.jsonl"
        write_lines_atomic(files[name], (canonical_json(r) + b"\n" for r in rows))
    origin = source if source.is_file() else source / MANIFEST
    certificate = _certificate_of(source) if source.is_file() else _split_certificate(origin)
    write_text_atomic(out / "README.md", dataset_card(facts, files, sources, certificate, settings))
    return dict(facts.counts)


def _split_certificate(manifest: Path) -> dict[str, Any] | None:
    """For a split directory: the certificate of the dataset it was split from, when it lies
    beside the directory under the manifest's source name."""
    try:
        source = orjson.loads(manifest.read_bytes()).get("source", "")
    except (OSError, orjson.JSONDecodeError):
        return None
    return _certificate_of(manifest.parent.parent / source) if source else None


def rows_of(path: Path) -> Sequence[dict[str, Any]]:
    """The rows of one split file (for tests and the trainer)."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

"""Answer-first (ToolGrad) against query-first (DFS), on the same environments, backend and budget.

:func:`run_comparison` generates ``n`` attempted samples with each generator
(:func:`toolgrad.dataset.generate_dataset` and :func:`benchmarks.dfs.generate_dfs_dataset`),
certifies both datasets with :func:`benchmarks.certify.certify_file`, and tallies, per generator:

* **pass rate**: certified samples (every check of the certificate passed: replay and validity)
  / attempted samples (a seed that produced no sample fails);
* **model calls and tokens**: per certified sample as recorded in it (``Sample.cost``), and all
  the run spent (failed seeds included) per certified sample;
* **stage decisions per sample**: the model calls a model backend would make for the recorded
  trace, so that offline runs (no model calls) still compare. ToolGrad: per iteration one
  proposal, per execution one turn per call plus a closing turn, one selection, one update;
  DFS: one per trace iteration (query, each expansion, answer);
* **tool calls per sample**: steps in a certified sample's chains (the paper's figure), and every
  call the run executed (forks and pruned branches included) per certified sample;
* **wall time** of generation and of certification.

"Same budget": ToolGrad runs ``iterations`` x ``proposals``; DFS gets ``max_model_calls``
decisions per sample, by default ``iterations * (proposals + 3)``, what ToolGrad spends when
every stage of every iteration runs once (propose, one turn per proposal, select, update).
The paper's figures (arXiv 2508.04086) ride along for reference. Only the CLI prints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from simulator.environment import shipped_environments
from toolgrad.dataset import SampleDone, generate_dataset, read_samples
from toolgrad.files import write_bytes_atomic, write_text_atomic
from toolgrad.llm.base import ChatModel
from toolgrad.records import RunSummary, Sample
from toolgrad.settings import GenerateSettings

from .certify import certificate_bytes, certify_file
from .dfs import METHOD, DFSSettings, generate_dfs_dataset

COMPARE_VERSION = "1"
METHODS = ("toolgrad", "dfs")
# ToolGrad (answer-first) vs ToolBench DFSDT (query-first), arXiv 2508.04086
PAPER: dict[str, dict[str, float]] = {
    "pass_rate": {"toolgrad": 1.0, "dfs": 0.638},
    "model_calls_per_sample": {"toolgrad": 45.9, "dfs": 64.5},
    "tool_calls_per_sample": {"toolgrad": 6.1, "dfs": 3.3},
}


class CompareSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    envs: list[str] = Field(default_factory=list)  # [] = every shipped environment
    n: int = Field(default=50, ge=1)  # attempted samples per generator (per environment with per_env)
    seed: int = 0
    llm: Literal["offline", "openai"] = "offline"
    model: str = ""
    base_url: str = ""
    cache: str | None = None
    replay_only: bool = False
    per_env: bool = False  # one comparison per environment (else one over all of them together)
    iterations: int = Field(default=10, ge=1)  # ToolGrad's T
    proposals: int = Field(default=3, ge=1)  # ToolGrad's k
    candidates: int = Field(default=3, ge=1)  # DFS children per node
    max_expansions: int = Field(default=40, ge=1)  # DFS expansions per sample
    max_model_calls: int | None = Field(default=None, ge=3)  # DFS decisions per sample; None: iterations*(proposals+3)
    output: str = "compare"

    def dfs_budget(self) -> int:
        return self.max_model_calls if self.max_model_calls is not None else self.iterations * (self.proposals + 3)

    def groups(self) -> list[list[str]]:
        envs = list(self.envs) or shipped_environments()
        return [[e] for e in envs] if self.per_env else [envs]


class MethodResult(BaseModel):
    """One generator's tallies on one group of environments; the figures are derived from them."""

    model_config = ConfigDict(extra="forbid")

    method: str
    attempted: int
    written: int
    certified: int
    model_calls: int = 0  # everything the run spent, failed seeds included
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: int = 0  # every call executed, forks and pruned branches included
    record_model_calls: int = 0  # summed over certified samples' cost records
    record_tokens: int = 0
    record_steps: int = 0  # chain steps summed over certified samples
    record_decisions: int = 0
    decisions: int | None = None  # over every attempt; None when the failed seeds' are unknown
    generate_seconds: float = 0.0
    certify_seconds: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _derived_are_recomputed(cls, data: Any) -> Any:
        # compare.json holds the derived figures too; reading it back recomputes them
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in cls.model_computed_fields}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pass_rate(self) -> float:
        return self.certified / self.attempted if self.attempted else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def model_calls_per_sample(self) -> float | None:
        return _per(self.record_model_calls, self.certified)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def model_calls_per_certified(self) -> float | None:
        return _per(self.model_calls, self.certified)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_per_sample(self) -> float | None:
        return _per(self.record_tokens, self.certified)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_per_certified(self) -> float | None:
        return _per(self.prompt_tokens + self.completion_tokens, self.certified)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def decisions_per_sample(self) -> float | None:
        return _per(self.record_decisions, self.certified)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def decisions_per_certified(self) -> float | None:
        return None if self.decisions is None else _per(self.decisions, self.certified)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tool_calls_per_sample(self) -> float | None:
        return _per(self.record_steps, self.certified)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tool_calls_executed_per_certified(self) -> float | None:
        return _per(self.tool_calls, self.certified)


_SUMMED = ("attempted", "written", "certified", "model_calls", "prompt_tokens", "completion_tokens", "tool_calls",
           "record_model_calls", "record_tokens", "record_steps", "record_decisions", "generate_seconds",
           "certify_seconds")


def _per(total: float, count: int) -> float | None:
    return round(total / count, 3) if count else None


def pooled(method: str, results: list[MethodResult]) -> MethodResult:
    sums: dict[str, Any] = {k: sum(getattr(r, k) for r in results) for k in _SUMMED}
    sums["generate_seconds"] = round(sums["generate_seconds"], 3)
    sums["certify_seconds"] = round(sums["certify_seconds"], 3)
    known = [r.decisions for r in results]
    sums["decisions"] = None if None in known else sum(d for d in known if d is not None)
    return MethodResult(method=method, **sums)


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environments: list[str]
    toolgrad: MethodResult
    dfs: MethodResult


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: str = COMPARE_VERSION
    kind: str = "toolgrad-compare"
    command: str = ""
    seed: int
    settings: dict[str, Any]
    budget: dict[str, dict[str, Any]]
    groups: list[Group]
    total: Group
    paper: dict[str, dict[str, float]] = Field(default_factory=lambda: {k: dict(v) for k, v in PAPER.items()})


# -- what each record says ----------------------------------------------------------------------


def decision_count(sample: Sample) -> int:
    """The model calls a model backend would make for the sample's recorded trace."""
    if sample.provenance.generator.get("method") == METHOD:
        return len(sample.trace.iterations)
    total = 0
    for it in sample.trace.iterations:
        total += 1  # propose
        total += sum(len(e.steps) + 1 for e in it.executions)
        total += 1 if it.selection is not None or it.failed_stage == "select" else 0
        total += 1 if it.query is not None or it.failed_stage == "update" else 0
    return total


def tally_records(samples: list[Sample]) -> dict[str, int]:
    return {
        "record_model_calls": sum(s.cost.model_calls for s in samples),
        "record_tokens": sum(s.cost.prompt_tokens + s.cost.completion_tokens for s in samples),
        "record_steps": sum(len(s.steps()) for s in samples),
        "record_decisions": sum(decision_count(s) for s in samples),
    }


# -- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhaseStarted:
    label: str  # e.g. "petstore: dfs generate"
    total: int


@dataclass(frozen=True, slots=True)
class PhaseAdvanced:
    label: str


CompareEvent = PhaseStarted | PhaseAdvanced


def run_comparison(settings: CompareSettings, *, chat: ChatModel | None = None,
                   events: Callable[[CompareEvent], None] | None = None, command: str = "") -> Comparison:
    """Run, certify and tally both generators on every group; write nothing but the datasets and
    certificates under ``settings.output`` (see :func:`write_comparison`). ``chat`` replaces
    the model client both generators would make (a test double)."""
    emit = events or (lambda event: None)
    root = Path(settings.output)
    root.mkdir(parents=True, exist_ok=True)
    groups = []
    for envs in settings.groups():
        folder = root / envs[0] if settings.per_env else root
        folder.mkdir(parents=True, exist_ok=True)
        label = envs[0] if settings.per_env else "all"
        toolgrad = _run_toolgrad(settings, envs, folder, label, chat, emit)
        dfs = _run_dfs(settings, envs, folder, label, chat, emit)
        groups.append(Group(environments=envs, toolgrad=toolgrad, dfs=dfs))
    total = Group(environments=sorted({e for g in groups for e in g.environments}),
                  toolgrad=pooled("toolgrad", [g.toolgrad for g in groups]),
                  dfs=pooled(METHOD, [g.dfs for g in groups]))
    budget = {
        "toolgrad": {"iterations": settings.iterations, "proposals": settings.proposals},
        "dfs": {"max_model_calls": settings.dfs_budget(), "max_expansions": settings.max_expansions,
                "candidates": settings.candidates},
    }
    return Comparison(command=command, seed=settings.seed, settings=settings.model_dump(mode="json"),
                      budget=budget, groups=groups, total=total)


def _counting(label: str, emit: Callable[[CompareEvent], None]) -> Callable[[object], None]:
    def on_event(event: object) -> None:
        if isinstance(event, SampleDone):
            emit(PhaseAdvanced(label))
    return on_event


def _run_toolgrad(settings: CompareSettings, envs: list[str], folder: Path, label: str, chat: ChatModel | None,
                  emit: Callable[[CompareEvent], None]) -> MethodResult:
    out = folder / "toolgrad.jsonl"
    out.unlink(missing_ok=True)  # generate_dataset resumes an existing file: start afresh
    gen = GenerateSettings.model_validate({
        "envs": envs, "n": settings.n, "seed": settings.seed, "llm": settings.llm, "model": settings.model,
        "base_url": settings.base_url, "cache": settings.cache, "replay_only": settings.replay_only,
        "iterations": settings.iterations, "proposals": settings.proposals, "output": str(out)})
    factory = None
    if chat is not None:
        from toolgrad.llm_policy import LLMPolicy

        model: ChatModel = chat
        factory = lambda toolbox: LLMPolicy(model)  # noqa: E731
    phase = f"{label}: toolgrad generate"
    emit(PhaseStarted(phase, settings.n))
    started = time.perf_counter()
    summary = generate_dataset(gen, events=_counting(phase, emit), policy_factory=factory)
    seconds = time.perf_counter() - started
    return _certified("toolgrad", out, settings.n, summary, seconds, label, emit)


def _run_dfs(settings: CompareSettings, envs: list[str], folder: Path, label: str, chat: ChatModel | None,
             emit: Callable[[CompareEvent], None]) -> MethodResult:
    out = folder / "dfs.jsonl"
    dfs = DFSSettings(envs=envs, n=settings.n, seed=settings.seed, llm=settings.llm, model=settings.model,
                      base_url=settings.base_url, cache=settings.cache, replay_only=settings.replay_only,
                      candidates=settings.candidates, max_expansions=settings.max_expansions,
                      max_model_calls=settings.dfs_budget(), output=str(out))
    phase = f"{label}: dfs generate"
    emit(PhaseStarted(phase, settings.n))
    started = time.perf_counter()
    summary = generate_dfs_dataset(dfs, chat=chat, events=_counting(phase, emit))
    seconds = time.perf_counter() - started
    return _certified(METHOD, out, settings.n, summary, seconds, label, emit, summary.config.get("decisions"))


def _certified(method: str, out: Path, attempted: int, summary: RunSummary, seconds: float, label: str,
               emit: Callable[[CompareEvent], None], decisions: int | None = None) -> MethodResult:
    """Certify ``out`` and tally it. ``decisions``: over every attempt, when the run counted them."""
    written = summary.new_samples
    certified: list[Sample] = []
    certify_seconds = 0.0
    target = out.with_name(out.name.removesuffix(".jsonl") + ".certificate.json")
    target.unlink(missing_ok=True)
    if written:
        phase = f"{label}: {method} certify"
        emit(PhaseStarted(phase, written))
        started = time.perf_counter()
        certificate = certify_file(out, on_sample=lambda _: emit(PhaseAdvanced(phase)))
        certify_seconds = time.perf_counter() - started
        write_bytes_atomic(target, certificate_bytes(certificate))
        passed = {v.line for v in certificate.samples if v.ok}
        samples = list(read_samples(out))
        certified = [s for line, s in enumerate(samples, 1) if line in passed]
        if decisions is None and written == attempted:  # every attempt is on record
            decisions = sum(decision_count(s) for s in samples)
    return MethodResult(
        method=method, attempted=attempted, written=written, certified=len(certified),
        model_calls=summary.model_calls, prompt_tokens=summary.prompt_tokens,
        completion_tokens=summary.completion_tokens, tool_calls=summary.tool_calls,
        decisions=decisions, generate_seconds=round(seconds, 3), certify_seconds=round(certify_seconds, 3),
        **tally_records(certified),
    )


# -- reports --------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _paper(metric: str, fmt: Callable[[float], str]) -> str:
    figures = PAPER[metric]
    return f"{fmt(figures['toolgrad'])} / {fmt(figures['dfs'])}"


def summary_rows(group: Group) -> list[tuple[str, str, str, str]]:
    """(metric, ToolGrad, DFS, paper ToolGrad / DFS) rows for one group (or the total)."""
    t, d = group.toolgrad, group.dfs

    def row(name: str, pick: Callable[[MethodResult], str], paper: str = "") -> tuple[str, str, str, str]:
        return name, pick(t), pick(d), paper

    return [
        row("attempted samples", lambda r: str(r.attempted)),
        row("written / certified", lambda r: f"{r.written} / {r.certified}"),
        row("pass rate (certified / attempted)", lambda r: _pct(r.pass_rate), _paper("pass_rate", _pct)),
        row("model calls / sample", lambda r: _num(r.model_calls_per_sample),
            _paper("model_calls_per_sample", lambda v: f"{v:.1f}")),
        row("model calls / certified sample, all attempts", lambda r: _num(r.model_calls_per_certified)),
        row("tokens / certified sample, all attempts", lambda r: _num(r.tokens_per_certified, 0)),
        row("stage decisions / sample", lambda r: _num(r.decisions_per_sample)),
        row("stage decisions / certified sample, all attempts", lambda r: _num(r.decisions_per_certified)),
        row("tool calls / sample", lambda r: _num(r.tool_calls_per_sample),
            _paper("tool_calls_per_sample", lambda v: f"{v:.1f}")),
        row("tool calls executed / certified sample", lambda r: _num(r.tool_calls_executed_per_certified)),
        row("generation wall time (s)", lambda r: f"{r.generate_seconds:.2f}"),
        row("certification wall time (s)", lambda r: f"{r.certify_seconds:.2f}"),
    ]


def group_rows(comparison: Comparison) -> list[tuple[str, ...]]:
    """Per group: environments, pass rates, tool calls and decisions per sample, both generators."""
    return [(", ".join(g.environments), _pct(g.toolgrad.pass_rate), _pct(g.dfs.pass_rate),
             _num(g.toolgrad.tool_calls_per_sample), _num(g.dfs.tool_calls_per_sample),
             _num(g.toolgrad.decisions_per_sample), _num(g.dfs.decisions_per_sample),
             f"{g.toolgrad.generate_seconds:.2f}", f"{g.dfs.generate_seconds:.2f}") for g in comparison.groups]


GROUP_HEADER = ("environments", "pass TG", "pass DFS", "tools/sample TG", "tools/sample DFS",
                "decisions/sample TG", "decisions/sample DFS", "gen s TG", "gen s DFS")


def _md_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def render_markdown(comparison: Comparison) -> str:
    s = comparison.settings
    b = comparison.budget
    lines = ["# ToolGrad (answer-first) vs DFS (query-first)", ""]
    if comparison.command:
        lines += ["```", comparison.command, "```", ""]
    lines += [
        f"Seed {comparison.seed}; {s['n']} attempted samples per generator"
        f"{' per environment' if s['per_env'] else ''}; backend `{s['llm']}`"
        f"{' (' + s['model'] + ')' if s['model'] else ''}; environments: {', '.join(comparison.total.environments)}.",
        f"Budget per sample: ToolGrad {b['toolgrad']['iterations']} iterations x {b['toolgrad']['proposals']} "
        f"proposals; DFS {b['dfs']['max_model_calls']} decisions, {b['dfs']['max_expansions']} expansions, "
        f"{b['dfs']['candidates']} children per node.",
        "",
    ]
    lines += _md_table(("metric", "ToolGrad", "DFS", "paper (ToolGrad / DFS)"), list(summary_rows(comparison.total)))
    if len(comparison.groups) > 1:
        lines += ["", "## Per environment", ""]
        lines += _md_table(GROUP_HEADER, group_rows(comparison))
    lines += [
        "",
        "Pass rate: samples that certify (every check: replay on fresh sandboxes, solvable, grounded, "
        "coherent, unique) over samples attempted. "
        "Per-sample figures are over certified samples, from their records; \"all attempts\" divides "
        "everything the run spent, failed seeds included, by the certified samples. Stage decisions: "
        "the model calls a model backend would make for the recorded trace (offline runs make none). "
        "Tool calls / sample: steps in a sample's chains; executed: every call made, forks and pruned "
        "branches included. Paper: arXiv 2508.04086.",
        "",
    ]
    return "\n".join(lines)


def read_comparison(path: Path) -> Comparison:
    """A ``compare.json`` read back (derived figures recomputed from the tallies)."""
    return Comparison.model_validate_json(path.read_bytes())


def write_comparison(comparison: Comparison, folder: Path) -> tuple[Path, Path]:
    """``compare.json`` (sorted keys, two-space indent) and ``compare.md`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "compare.json", folder / "compare.md"
    data = comparison.model_dump(mode="json")
    write_text_atomic(json_path, json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(md_path, render_markdown(comparison))
    return json_path, md_path

"""Answer-first (ToolGrad) against query-first (ToolBench's DFSDT), on the same environments,
model, tool set size and budget; both datasets judged by the same certification.

:func:`run_comparison` generates ``n`` attempted samples (seeds ``seed .. seed+n-1``) with each
generator (:func:`toolgrad.dataset.runner.generate_dataset` and :func:`benchmarks.baseline.dfs.generate_dfs_dataset`),
certifies both datasets with :func:`benchmarks.certify.certificate.certify_file` (every check: replay, solvable,
grounded, coherent, unique), and keeps one :class:`SeedResult` per seed and generator. From them:

* **pass rate**: certified samples / attempted seeds (a seed that produced no sample fails), with
  a Wilson 95% interval;
* **model calls per certified sample, all attempts**: every model call the generator made for
  every seed, failed seeds included, over the certified samples (the paper's "model calls per
  sample" counts this way when every sample passes); model calls are defined in
  :mod:`benchmarks.baseline.budget` (completions asked for plus repair turns), tokens are the
  server's; a percentile bootstrap 95% interval over seeds (:mod:`benchmarks.intervals`);
* **tool calls per sample**: steps in a certified sample's chains (the paper's figure), bootstrap
  interval over certified samples;
* offline (no model), **decisions** in place of model calls: the calls a model backend would
  have made for the same trace (ToolGrad: per iteration a proposal, a turn per call plus a closing
  turn per execution, a selection and an update; DFSDT: the query and one per expansion).

"Same budget": both generators get the same cap on model calls per seed
(:class:`~benchmarks.baseline.budget.BudgetedChat`, ``max_model_calls``, ToolBench's 200 by default),
the same tool set size (ToolGrad's mini-batch B is the DFSDT sampled set) and sampling
temperature. Offline, ToolGrad is bounded by its ``iterations`` and DFSDT by the cap on decisions.
Per environment (``per_env``) and pooled over environments; pooled intervals resample within each
environment. The paper's figures (arXiv 2508.04086) ride along. Only the CLI prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from benchmarks.certify.certificate import certificate_bytes, certify_file
from simulator.environments.environment import shipped_environments
from toolgrad.backends.base import ChatModel
from toolgrad.dataset.files import write_bytes_atomic
from toolgrad.dataset.lines import read_samples
from toolgrad.dataset.runner import generate_dataset
from toolgrad.events import PhaseAdvanced, PhaseEvent, PhaseStarted, SampleDone
from toolgrad.loop.policy import Policy
from toolgrad.records import Sample
from toolgrad.settings import GenerateSettings
from toolgrad.toolbox import Toolbox

from .budget import BudgetedChat, Spent
from .dfs import (
    METHOD,
    TOOLBENCH_MAX_DEPTH,
    TOOLBENCH_MAX_QUERY_COUNT,
    TOOLBENCH_WIDTH,
    DFSSettings,
    generate_dfs_dataset,
)
from .figures import Figures, SeedResult, figures_of

COMPARE_VERSION = "2"
METHODS = ("toolgrad", METHOD)
# ToolGrad (answer-first) vs ToolBench DFSDT (query-first), arXiv 2508.04086
PAPER: dict[str, dict[str, float]] = {
    "pass_rate": {"toolgrad": 1.0, "dfs": 0.638},
    "model_calls_per_sample": {"toolgrad": 45.9, "dfs": 64.5},
    "tool_calls_per_sample": {"toolgrad": 6.1, "dfs": 3.3},
}


class CompareSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    envs: list[str] = Field(default_factory=list)  # [] = every shipped environment
    n: int = Field(default=50, ge=1)  # attempted seeds per generator (per environment with per_env)
    seed: int = 0
    llm: Literal["offline", "openai"] = "offline"
    model: str = ""
    base_url: str = ""
    cache: str | None = None
    replay_only: bool = False
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)  # both generators' sampling temperature
    per_env: bool = False  # one comparison per environment (else one over all of them together)
    iterations: int = Field(default=10, ge=1)  # ToolGrad's T
    proposals: int = Field(default=3, ge=1)  # ToolGrad's k
    batch_size: int = Field(default=50, ge=2)  # ToolGrad's B = the DFSDT sampled set
    max_model_calls: int = Field(default=TOOLBENCH_MAX_QUERY_COUNT, ge=2)  # per seed, both generators
    dfs_width: int = Field(default=TOOLBENCH_WIDTH, ge=1)  # DFSDT children per node
    dfs_max_depth: int = Field(default=TOOLBENCH_MAX_DEPTH, ge=1)  # DFSDT tree nodes per path
    output: str = "compare"

    def groups(self) -> list[list[str]]:
        envs = list(self.envs) or shipped_environments()
        return [[e] for e in envs] if self.per_env else [envs]

    def budget(self) -> dict[str, dict[str, Any]]:
        cap = self.max_model_calls
        return {"toolgrad": {"iterations": self.iterations, "proposals": self.proposals, "batch_size": self.batch_size,
                             "max_model_calls": cap},
                "dfs": {"width": self.dfs_width, "max_depth": self.dfs_max_depth, "batch_size": self.batch_size,
                        "max_model_calls": cap}}


class MethodResult(BaseModel):
    """One generator on one group of environments (or pooled): totals, figures, every seed."""

    model_config = ConfigDict(extra="forbid")

    method: str
    attempted: int
    written: int
    certified: int
    model_calls: int  # over every seed, failed ones included
    prompt_tokens: int
    completion_tokens: int
    http_requests: int  # sent to the server: retries and probes included; 0 when replayed from a cache
    tool_calls_executed: int  # every call made, forks and pruned branches included
    generate_seconds: float
    certify_seconds: float
    figures: Figures
    seeds: list[SeedResult]


def method_result(method: str, seeds: list[SeedResult], *, tool_calls_executed: int, generate_seconds: float,
                  certify_seconds: float, label: str) -> MethodResult:
    return MethodResult(
        method=method, attempted=len(seeds), written=sum(s.written for s in seeds),
        certified=sum(s.certified for s in seeds), model_calls=sum(s.model_calls for s in seeds),
        prompt_tokens=sum(s.prompt_tokens for s in seeds), completion_tokens=sum(s.completion_tokens for s in seeds),
        http_requests=sum(s.http_requests for s in seeds), tool_calls_executed=tool_calls_executed,
        generate_seconds=round(generate_seconds, 3), certify_seconds=round(certify_seconds, 3),
        figures=figures_of(seeds, f"{label}/{method}"), seeds=seeds)


def pooled(method: str, results: list[MethodResult]) -> MethodResult:
    """The results of several groups as one (intervals resample within each group)."""
    return method_result(method, [s for r in results for s in r.seeds],
                         tool_calls_executed=sum(r.tool_calls_executed for r in results),
                         generate_seconds=sum(r.generate_seconds for r in results),
                         certify_seconds=sum(r.certify_seconds for r in results), label="pooled")


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
    iterations = sample.trace.iterations if sample.trace is not None else []  # read with traces=True
    if sample.provenance.generator.get("method") == METHOD:
        return len(iterations)
    total = 0
    for it in iterations:
        total += 1  # propose
        total += sum(len(e.steps) + 1 for e in it.executions)
        total += 1 if it.selection is not None or it.failed_stage == "select" else 0
        total += 1 if it.query is not None or it.failed_stage == "update" else 0
    return total


# -- the run ------------------------------------------------------------------------------------


CompareEvent = PhaseEvent
Emit = Callable[[CompareEvent], None]


def model_client(settings: CompareSettings) -> ChatModel:
    """The client both generators share (``toolgrad generate --llm openai``'s, for the same model,
    base URL and cache)."""
    from toolgrad.policies.model.policy import DEFAULT_TIMEOUT_S, shared_chat

    return shared_chat(settings.model, settings.base_url, settings.cache, settings.replay_only,
                       timeout=DEFAULT_TIMEOUT_S)


def run_comparison(settings: CompareSettings, *, chat: ChatModel | None = None, events: Emit | None = None,
                   command: str = "") -> Comparison:
    """Run, certify and tally both generators on every group; write nothing but the datasets and
    certificates under ``settings.output`` (:func:`benchmarks.baseline.report.write_comparison` writes the reports).
    ``chat`` replaces the model client both generators would share (a test double)."""
    emit = events or (lambda event: None)
    if chat is None and settings.llm == "openai":
        chat = model_client(settings)
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
    return Comparison(command=command, seed=settings.seed, settings=settings.model_dump(mode="json"),
                      budget=settings.budget(), groups=groups, total=total)


class _ToolgradSeeds:
    """What the answer-first run says per seed: why a seed failed and, with a model, what it spent,
    through one :class:`BudgetedChat` per sample. :func:`~toolgrad.dataset.runner.generate_dataset` (one
    seed at a time, as here) makes a policy for its provenance, then one per seed right before
    running it, and reports the seed's :class:`SampleDone` right after: the latest view is that seed's."""

    def __init__(self, chat: ChatModel | None, cap: int, temperature: float) -> None:
        self.chat, self.cap, self.temperature = chat, cap, temperature
        self.latest: BudgetedChat | None = None
        self.spent: dict[int, Spent] = {}
        self.errors: dict[int, str] = {}

    def policy(self, toolbox: Toolbox) -> Policy:
        from toolgrad.policies.model.policy import LLMPolicy

        assert self.chat is not None
        self.latest = BudgetedChat(self.chat, self.cap)
        return LLMPolicy(self.latest, temperature=self.temperature)

    def on_event(self, event: object) -> None:
        if not isinstance(event, SampleDone):
            return
        self.errors[event.seed] = event.error
        if self.latest is not None:
            self.spent[event.seed] = self.latest.spent()


def _counting(label: str, emit: Emit, also: Callable[[object], None] | None = None) -> Callable[[object], None]:
    def on_event(event: object) -> None:
        if also is not None:
            also(event)
        if isinstance(event, SampleDone):
            emit(PhaseAdvanced(label))
    return on_event


def _run_toolgrad(settings: CompareSettings, envs: list[str], folder: Path, label: str, chat: ChatModel | None,
                  emit: Emit) -> MethodResult:
    out = folder / "toolgrad.jsonl"
    out.unlink(missing_ok=True)  # generate_dataset resumes an existing file: start afresh
    gen = GenerateSettings.model_validate({
        "envs": envs, "n": settings.n, "seed": settings.seed, "llm": settings.llm, "model": settings.model,
        "base_url": settings.base_url, "cache": settings.cache, "replay_only": settings.replay_only,
        "temperature": settings.temperature, "iterations": settings.iterations, "proposals": settings.proposals,
        "batch_size": settings.batch_size, "output": str(out)})
    tally = _ToolgradSeeds(chat, settings.max_model_calls, settings.temperature)
    phase = f"{label}: toolgrad generate"
    emit(PhaseStarted(phase, settings.n))
    started = time.perf_counter()
    summary = generate_dataset(gen, events=_counting(phase, emit, tally.on_event),
                               policy_factory=tally.policy if chat is not None else None)
    seconds = time.perf_counter() - started
    samples, certified, certify_seconds = _certify("toolgrad", out, label, emit)
    by_seed = {s.seed: s for s in samples}
    seeds = []
    for seed in range(settings.seed, settings.seed + settings.n):
        sample = by_seed.get(seed)
        spent = tally.spent.get(seed, Spent())
        seeds.append(SeedResult(
            group=label, seed=seed, written=sample is not None, certified=seed in certified,
            model_calls=spent.model_calls, prompt_tokens=spent.prompt_tokens,
            completion_tokens=spent.completion_tokens, http_requests=spent.http_requests,
            decisions=decision_count(sample) if sample is not None and chat is None else None,
            steps=len(sample.steps()) if sample is not None else 0, error=tally.errors.get(seed, "")))
    return method_result("toolgrad", seeds, tool_calls_executed=summary.tool_calls, generate_seconds=seconds,
                         certify_seconds=certify_seconds, label=label)


def _run_dfs(settings: CompareSettings, envs: list[str], folder: Path, label: str, chat: ChatModel | None,
             emit: Emit) -> MethodResult:
    out = folder / "dfs.jsonl"
    dfs = DFSSettings(envs=envs, n=settings.n, seed=settings.seed, llm=settings.llm, model=settings.model,
                      base_url=settings.base_url, cache=settings.cache, replay_only=settings.replay_only,
                      temperature=settings.temperature, batch_size=settings.batch_size, width=settings.dfs_width,
                      max_depth=settings.dfs_max_depth, max_model_calls=settings.max_model_calls, output=str(out))
    phase = f"{label}: dfs generate"
    emit(PhaseStarted(phase, settings.n))
    started = time.perf_counter()
    summary = generate_dfs_dataset(dfs, chat=chat, events=_counting(phase, emit))
    seconds = time.perf_counter() - started
    _, certified, certify_seconds = _certify(METHOD, out, label, emit)
    seeds = [_dfs_seed(label, row, certified, chat is None) for row in summary.config["per_seed"]]
    return method_result(METHOD, seeds, tool_calls_executed=summary.tool_calls, generate_seconds=seconds,
                         certify_seconds=certify_seconds, label=label)


def _dfs_seed(label: str, row: dict[str, Any], certified: set[int], offline: bool) -> SeedResult:
    return SeedResult(group=label, seed=row["seed"], written=row["written"], certified=row["seed"] in certified,
                      model_calls=row["model_calls"], prompt_tokens=row["prompt_tokens"],
                      completion_tokens=row["completion_tokens"], http_requests=row["http_requests"],
                      decisions=row["decisions"] if offline else None, steps=row["steps"], error=row["error"])


def _certify(method: str, out: Path, label: str, emit: Emit) -> tuple[list[Sample], set[int], float]:
    """Certify ``out`` (writing ``<method>.certificate.json`` beside it): its samples, the seeds
    of those that pass every check, and the seconds it took."""
    target = out.with_name(out.name.removesuffix(".jsonl") + ".certificate.json")
    target.unlink(missing_ok=True)
    samples = list(read_samples(out, traces=True)) if out.exists() else []
    if not samples:
        return [], set(), 0.0
    phase = f"{label}: {method} certify"
    emit(PhaseStarted(phase, len(samples)))
    started = time.perf_counter()
    certificate = certify_file(out, on_sample=lambda _: emit(PhaseAdvanced(phase)))
    seconds = time.perf_counter() - started
    write_bytes_atomic(target, certificate_bytes(certificate))
    return samples, {v.seed for v in certificate.samples if v.ok}, seconds


def read_comparison(path: Path) -> Comparison:
    """A ``compare.json`` read back."""
    return Comparison.model_validate_json(path.read_bytes())



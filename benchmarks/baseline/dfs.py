"""The query-first baseline: ToolBench's DFSDT (``DFS_tree_search`` with ``with_filter=False``),
on the simulator, with the same model backend, tool set size and budget as the answer-first loop.

Per seed:

1. **The sampled set.** ``batch_size`` tools are drawn from ``sha256(seed)`` over every tool of
   the environments (ToolGrad's mini-batch size B; all of them when there are fewer).
2. **The query, first.** A query writer is shown the whole set and writes a request needing 2-4
   of its tools, before any call is made (ToolBench's instruction generation: the request and
   its "relevant APIs"). With a model: one structured-output call (and one rewrite turn when it
   names an API). Offline: :class:`~benchmarks.baseline.dfs_offline.OfflineBackend`'s template.
3. **DFSDT.** A depth-first search over assistant turns, as ToolBench runs it. Expanding a node
   is **one model call**: the model sees the system prompt, the request and the path so far as a
   conversation, every tool of the sampled set plus ``Finish``, and, when the node already has
   children, the *diversity prompt* listing what they did ("do something different"). Its one
   reply becomes a child:

   * a tool call, run for real in a fork of the node's sandbox session (its result, 2xx or not,
     is the observation the search continues from);
   * ``Finish`` with ``return_type: give_answer`` and a ``final_answer``: the search ends, solved;
   * ``Finish`` with ``give_up_and_restart``: the child is pruned and the search backtracks past
     the node that gave up, to its parent's next child (ToolBench's ``prune_back_length`` 2);
   * text without a call (a thought), a call to a tool that does not exist, arguments that are not
     a JSON object, or a ``Finish`` without its fields: a child whose observation says so (or
     the thought), searched on like any other;
   * a model error (no usable reply after the client's retries and repairs): a pruned child.

   A node has at most ``width`` children (ToolBench's ``tree_beam_size``; its data used 2) and a
   path at most ``max_depth`` tree nodes, counted as ToolBench does: a turn adds one node for its
   thought when it has text, and two for a function call (the action and its input); 12 as
   ToolBench ran it, so 4-6 turns. The search stops when solved, when the tree is exhausted, or
   when the seed's budget is spent: ``max_model_calls`` model calls (the query's included; no
   call is started once they are spent; ToolBench instead drops the reply of its last allowed call).

An unsolved seed is a failure: counted (``failed_seeds``), not written. So is a seed answered
before any tool call succeeded: with no call in its chain it is not a tool-use sample (the
answer-first loop writes none either). A solved seed is a :class:`~toolgrad.records.Sample` whose
one chain is the path's calls that returned a 2xx, in order (a call that failed changed nothing,
and stays in the trace as the loop's failed forks do), its answer the ``final_answer``, written
with toolgrad's dataset writer with ``provenance.generator["method"] == "dfs"`` and the search in
its trace (iteration 0 the query, then one iteration per model call of the search), so
:func:`benchmarks.certify.certificate.certify_file` judges both generators alike. ``cost.tool_calls``
counts every call made, pruned branches included.

Deliberate differences from ToolBench: tool results are clipped to 400 characters (the loop's
executor sees as much; ToolBench clips at 1,024); sandboxes are forked per branch (a real API
keeps the effects of abandoned branches); the budget rule above.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulator.environments.environment import shipped_environments
from toolgrad.backends.base import ChatModel
from toolgrad.dataset.files import LineFiles, write_bytes_atomic, write_json_atomic
from toolgrad.dataset.lines import record_lines, tool_table_bytes, tools_path, traces_path
from toolgrad.dataset.provenance import git_revision, package_versions
from toolgrad.dataset.runner import SCHEMA_SUFFIX, SUMMARY_SUFFIX, sole_writer
from toolgrad.events import Event, RunFinished, RunStarted, SampleDone
from toolgrad.loop.policy import Workflow
from toolgrad.loop.sample import SampleOutcome, candidate_tools
from toolgrad.records import Chain, Cost, Provenance, RunSummary, Sample
from toolgrad.sampling import stable_sample
from toolgrad.settings import ToolgradError, sidecar
from toolgrad.toolbox import Toolbox

from .budget import Spent
from .dfs_model import ModelBackend
from .dfs_offline import OfflineBackend
from .dfs_search import SearchBackend, SearchOutcome, search_sample

METHOD = "dfs"
# ToolBench generated its data with DFS_woFilter_w2, single_chain_max_step=12, max_query_count=200
TOOLBENCH_WIDTH, TOOLBENCH_MAX_DEPTH, TOOLBENCH_MAX_QUERY_COUNT = 2, 12, 200


class DFSSettings(BaseModel):
    """One DFSDT run. ``envs``, ``n``, ``seed``, ``llm`` ... ``output`` mean what they mean for
    ``toolgrad generate``; the rest is the search and its budget (per seed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    envs: list[str] = Field(default_factory=list)  # [] = every shipped environment
    n: int = Field(default=10, ge=0)
    seed: int = 0
    llm: Literal["offline", "openai"] = "offline"
    model: str = ""
    base_url: str = ""
    cache: str | None = None
    replay_only: bool = False
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    batch_size: int = Field(default=50, ge=2)  # the sampled tool set, all of it shown (ToolGrad's B)
    width: int = Field(default=TOOLBENCH_WIDTH, ge=1)  # children per node
    max_depth: int = Field(default=TOOLBENCH_MAX_DEPTH, ge=1)  # tree nodes per path, counted as ToolBench does
    max_model_calls: int = Field(default=TOOLBENCH_MAX_QUERY_COUNT, ge=2)  # per seed, the query's included
    output: str = "dfs.jsonl"

    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.n))

    def generator(self) -> dict[str, Any]:
        """What goes in ``provenance.generator`` (besides the environments)."""
        generator: dict[str, Any] = {"method": METHOD, "batch_size": self.batch_size, "width": self.width,
                                     "max_depth": self.max_depth, "max_model_calls": self.max_model_calls}
        if self.llm != "offline":
            generator["temperature"] = self.temperature
        return generator


BackendFactory = Callable[[Toolbox], SearchBackend]


def draw_pool(toolbox: Toolbox, size: int, seed: int) -> list[str]:
    """The seed's sampled tool set: ``size`` tools (all when fewer), drawn from ``sha256(seed)``, in
    the order drawn (as the answer-first mini-batch is shown: at temperature 0 the order is what
    makes two seeds over the same small set differ)."""
    return stable_sample(toolbox.names(), size, "dfs-pool", seed)


def backend_factory_for(settings: DFSSettings, chat: ChatModel | None = None) -> BackendFactory:
    """Offline, or a model: ``chat`` when given (a client or a test double), else the client
    ``toolgrad generate --llm openai`` would use for the same model, base URL and cache. One
    backend per seed: it counts (and caps) that seed's spending."""
    if settings.llm == "offline" and chat is None:
        return lambda toolbox: OfflineBackend(toolbox, settings)
    if chat is None:
        if not settings.model:
            raise ToolgradError("--llm openai needs --model (or TOOLGRAD_MODEL)")
        from toolgrad.policies.model.policy import DEFAULT_TIMEOUT_S, shared_chat

        chat = shared_chat(settings.model, settings.base_url, settings.cache, settings.replay_only,
                           timeout=DEFAULT_TIMEOUT_S)
    model: ChatModel = chat
    return lambda toolbox: ModelBackend(toolbox, model, cap=settings.max_model_calls,
                                        temperature=settings.temperature)


def make_provenance(settings: DFSSettings, toolbox: Toolbox, llm: str) -> Provenance:
    generator = {**settings.generator(), "environments": sorted(toolbox.environments)}
    return Provenance(environments=toolbox.fingerprints(), generator=generator, llm=llm,
                      model=settings.model if llm != "offline" else "",
                      base_url=settings.base_url if llm != "offline" else "",
                      versions=package_versions(), git_revision=git_revision())


def to_outcome(toolbox: Toolbox, outcome: SearchOutcome) -> SampleOutcome:
    """The solved search as the generator's outcome (so its lines are written the same way)."""
    assert outcome.query is not None and outcome.solved
    workflow = Workflow(chains=[Chain(steps=list(outcome.steps))], query=outcome.query.text, answer=outcome.answer)
    return SampleOutcome(outcome.seed, workflow, outcome.trace, outcome.cost, outcome.cache_keys,
                         candidate_tools(toolbox, workflow))


@dataclass(slots=True)
class SeedTally:
    """One seed's figures, for the run summary's ``config["per_seed"]`` (and the comparison)."""

    seed: int
    written: bool
    spent: Spent
    decisions: int  # model calls with a model; query + expansions offline
    tool_calls: int  # every call executed, pruned branches included
    steps: int  # calls in the written chain (0 when not written)
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "written": self.written, "model_calls": self.spent.model_calls,
                "prompt_tokens": self.spent.prompt_tokens, "completion_tokens": self.spent.completion_tokens,
                "http_requests": self.spent.http_requests, "decisions": self.decisions,
                "tool_calls": self.tool_calls, "steps": self.steps, "error": self.error}


@dataclass(slots=True)
class _Totals:
    cost: Cost = field(default_factory=Cost)
    http_requests: int = 0
    written: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    per_seed: list[SeedTally] = field(default_factory=list)

    def add(self, tally: SeedTally, cost: Cost) -> None:
        self.cost = Cost(**{k: getattr(self.cost, k) + getattr(cost, k) for k in Cost.model_fields})
        self.http_requests += tally.spent.http_requests
        (self.written if tally.written else self.failed).append(tally.seed)
        self.per_seed.append(tally)


def generate_dfs_dataset(
    settings: DFSSettings, *, chat: ChatModel | None = None, events: Callable[[Event], None] | None = None,
) -> RunSummary:
    """Run DFSDT for ``settings.seeds()`` and write the solved samples to ``settings.output``
    (replaced, not resumed), in seed order, with ``.summary.json`` (``config["per_seed"]``:
    every seed's :class:`SeedTally`) and ``.schema.json`` beside it. Same settings and model
    replies, same bytes."""
    emit = events or (lambda event: None)
    started = time.perf_counter()
    refs = list(settings.envs) or shipped_environments()
    if not refs:
        raise ToolgradError("no environment: pass --env NAME|DIR|SPEC (no shipped environments were found)")
    out = Path(settings.output)
    if not out.parent.exists():
        raise ToolgradError(f"output directory {out.parent} does not exist")
    with sole_writer(out):  # one writer per output file
        toolbox = Toolbox.in_process(refs)
        factory = backend_factory_for(settings, chat)
        provenance = make_provenance(settings, toolbox, factory(toolbox).name)
        seeds = settings.seeds()
        emit(RunStarted(str(out), settings.seed, len(seeds), len(seeds), 0, sorted(toolbox.environments)))
        out.unlink(missing_ok=True)
        traces_path(out).unlink(missing_ok=True)
        write_json_atomic(sidecar(out, SCHEMA_SUFFIX), Sample.model_json_schema())
        write_bytes_atomic(tools_path(out), tool_table_bytes(toolbox))
        totals = _Totals()
        writer = LineFiles([traces_path(out), out])
        try:
            for seed in seeds:
                tally, cost = _one_seed(toolbox, factory, seed, settings, provenance, writer)
                totals.add(tally, cost)
                emit(SampleDone(seed, tally.written, tally.steps, cost.model_calls, cost.prompt_tokens,
                                cost.completion_tokens, tally.error))
        finally:
            writer.close()
            toolbox.close()
        summary = _summary(settings, out, provenance, totals, time.perf_counter() - started)
        write_json_atomic(sidecar(out, SUMMARY_SUFFIX), summary.model_dump(mode="json"))
        emit(RunFinished(summary))
        return summary


def _one_seed(toolbox: Toolbox, factory: BackendFactory, seed: int, settings: DFSSettings,
              provenance: Provenance, writer: LineFiles) -> tuple[SeedTally, Cost]:
    backend = factory(toolbox)
    pool = draw_pool(toolbox, settings.batch_size, seed)
    try:
        outcome = search_sample(toolbox, backend, seed, pool, width=settings.width, max_depth=settings.max_depth,
                                max_model_calls=settings.max_model_calls)
    finally:
        toolbox.forget_snapshots()
    error = outcome.error
    written = False
    if outcome.solved:
        try:
            writer.append(record_lines(to_outcome(toolbox, outcome), provenance))
            written = True
        except TypeError as exc:  # e.g. an integer wider than 64 bits
            error = f"the record cannot be written as canonical JSON: {exc}"
    tally = SeedTally(seed, written, outcome.spent, outcome.decisions, outcome.cost.tool_calls,
                      len(outcome.steps) if written else 0, error)
    return tally, outcome.cost


def _summary(settings: DFSSettings, out: Path, provenance: Provenance, totals: _Totals, wall: float) -> RunSummary:
    written = totals.written
    return RunSummary(
        dataset=str(out), samples=len(written), seeds=written, new_samples=len(written), failed_seeds=totals.failed,
        wall_seconds=round(wall, 3), samples_per_second=round(len(written) / wall, 3) if wall > 0 else 0.0,
        model_calls=totals.cost.model_calls, prompt_tokens=totals.cost.prompt_tokens,
        completion_tokens=totals.cost.completion_tokens, tool_calls=totals.cost.tool_calls,
        model_requests=totals.http_requests,
        config={**settings.model_dump(mode="json"), "generator": settings.generator(),
                "environments": sorted(provenance.environments), "schema": str(sidecar(out, SCHEMA_SUFFIX)),
                "per_seed": [t.to_json() for t in totals.per_seed]},
    )


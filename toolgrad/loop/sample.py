"""The answer-first loop for one sample: propose, execute, select, update, T times.

What a caller may rely on:

* **Real calls only.** Every step in a sample's chains is a call that ran, in the order it ran,
  in the sample's own sandbox session. Each proposal runs in its own fork of that session; the
  chosen fork *becomes* the sample session (its snapshot is restored into it), so the sample
  session holds exactly the effects of the recorded chains.
* **Replayable in chain order.** Chains are replayed (by the certifier) chains in order, steps
  in order, on a fresh session. The loop keeps that order equal to the execution order within
  each environment: a selection that extends a chain while a later chain already touched the
  same environment is appended as a new chain instead (the rationale in the trace says so).
* **Every stage recorded.** Each iteration lands in the :class:`~toolgrad.records.Trace` with
  its batch, proposals, executions (with the validator's reason), selection and rewritten
  query/answer; a stage that fails (a :class:`~toolgrad.loop.policy.StageError`, a model error, a
  query that names an API) is recorded with ``failed_stage`` and ``error``, and the loop moves
  on to the next iteration with the workflow unchanged.
* **Only valid text is accepted.** An update whose query/answer fails a per-sample validity
  check (:func:`toolgrad.validity.checks.validity_problem`: solvable, grounded, coherent, against the
  toolbox's tool schemas) is rejected like a failed stage; the same check is handed to the policy
  (``Context.check_text``), so a model can be asked for a rewrite first. Every workflow the loop
  returns therefore passes the checks ``toolgrad certify`` applies.
* **Sources.** A step's argument sources are keyed by JSON pointer into its arguments
  (:mod:`toolgrad.loop.sources`): what the policy declared (kept only when the pointer resolves to
  the value; chain :data:`~toolgrad.loop.stages.THIS_EXECUTION` names an earlier call of the same execution by
  position), else found by value: a string of 3+ characters or a number other than 0/1 equal to
  a scalar in an earlier step's response (earlier in replay order; the latest such step wins).
* **Deterministic.** The mini-batch is drawn from ``sha256(seed, iteration, tool name)``; the
  rest is the policy's business (the offline policy is deterministic; a model policy is, given
  its record/replay cache).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from toolgrad.records import Cost, Iteration, Trace
from toolgrad.sampling import rank_digests, stable_sample
from toolgrad.toolbox import Toolbox
from toolgrad.validity.checks import validity_problem
from toolgrad.validity.tool_terms import TermsOf, toolbox_terms

from .policy import Context, Policy, Workflow, forbidden_names
from .sources import SourceFinder
from .stages import Stage, run_iteration

STAGES = ("propose", "execute", "select", "update")


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """The knobs of the loop. Everything here is recorded in each sample's provenance."""

    iterations: int = 10  # T
    batch_size: int = 50  # B (all tools when fewer)
    proposals: int = 3  # k
    max_agent_steps: int = 3
    max_proposal_tools: int = 3

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class SampleOutcome:
    """What one seed produced; ``ok`` is False for a failed seed (no successful update)."""

    seed: int
    workflow: Workflow
    trace: Trace
    cost: Cost
    cache_keys: list[str]
    candidate_tools: list[str] = field(default_factory=list)
    # what varies between a recorded run and its replay: for the run summary, not the record
    model_requests: int = 0  # HTTP requests sent to the model server (retries included)
    cache_hits: int = 0  # model calls answered from the record/replay cache

    @property
    def ok(self) -> bool:
        return bool(self.workflow.chains) and bool(self.workflow.query)

    def calls(self) -> int:
        return sum(len(c.steps) for c in self.workflow.chains)


# -- the query check ------------------------------------------------------------------------


def api_names(toolbox: Toolbox) -> list[str]:
    """Names a query must not contain, over every tool of ``toolbox`` (see :func:`forbidden_names`);
    worked out once per toolbox and set of tools (every sample asks again). The list is shared:
    read it, do not change it."""
    tools = tuple((bound.name, bound.tool.operation_id) for bound in toolbox.tools.values())
    with _API_NAMES_LOCK:
        known = _API_NAMES.get(toolbox)
    if known is None or known[0] != tools:
        known = (tools, forbidden_names(tools))
        with _API_NAMES_LOCK:
            _API_NAMES[toolbox] = known
    return known[1]


_API_NAMES: weakref.WeakKeyDictionary[Toolbox, tuple[tuple[tuple[str, str], ...], list[str]]] = (
    weakref.WeakKeyDictionary())
_API_NAMES_LOCK = threading.Lock()


# -- the loop -------------------------------------------------------------------------------


def draw_batch(names: list[str], size: int, seed: int, iteration: int) -> list[str]:
    """The iteration's mini-batch: ``size`` tools (all when fewer), drawn from (seed, iteration):
    ``stable_sample(sorted(names), size, "batch", seed, iteration)``."""
    return BatchDraw(names)(size, seed, iteration)


class BatchDraw:
    """:func:`draw_batch` over one toolbox's names, encoded once for every iteration of a
    sample. With distinct names (a toolbox's) no two share a rank, so sorting by the ranks'
    digests (whose order is their hex's) alone is :func:`~toolgrad.sampling.stable_sample`'s
    order; repeated names take the general way."""

    __slots__ = ("_encoded", "names")

    def __init__(self, names: list[str]) -> None:
        self.names = sorted(names)
        self._encoded = [n.encode() for n in self.names] if len(set(self.names)) == len(self.names) else None

    def __call__(self, size: int, seed: int, iteration: int) -> list[str]:
        if self._encoded is None:
            return stable_sample(self.names, size, "batch", seed, iteration)
        digests = rank_digests(self._encoded, "batch", seed, iteration)
        order = sorted(range(len(digests)), key=digests.__getitem__)[: max(size, 0)]
        return [self.names[i] for i in order]


def candidate_tools(toolbox: Toolbox, workflow: Workflow) -> list[str]:
    """The tools the chains use (names the toolbox knows), in order of first use; their OpenAI
    specs go once per dataset into the tool table."""
    seen: list[str] = []
    for _, _, step in workflow.steps():
        if step.tool not in seen and step.tool in toolbox.tools:
            seen.append(step.tool)
    return seen


def run_sample(
    toolbox: Toolbox,
    policy: Policy,
    seed: int,
    config: GeneratorConfig,
    *,
    session: str | None = None,
    on_iteration: Callable[[Iteration], None] | None = None,
) -> SampleOutcome:
    """Run the loop for one seed in ``session`` (reset first, dropped after, forks included)."""
    session = session or f"sample-{seed}"
    toolbox.reset(session)
    forbidden = api_names(toolbox)
    check = _text_check(toolbox_terms(toolbox))
    batch = BatchDraw(toolbox.names())
    workflow = Workflow()
    trace = Trace()
    tool_calls = 0
    finder = SourceFinder()
    try:
        for i in range(config.iterations):
            batch_names = batch(config.batch_size, seed, i)
            record = Iteration(iteration=i, batch=batch_names)
            trace.iterations.append(record)
            ctx = Context(seed=seed, iteration=i, batch=[toolbox.tools[n] for n in batch_names],
                          workflow=workflow, k=config.proposals, max_agent_steps=config.max_agent_steps,
                          check_text=check)
            forks: list[str] = []
            stage = Stage(toolbox, policy, ctx, session, record, forks, forbidden, finder, config.max_proposal_tools)
            try:
                workflow, calls = run_iteration(stage)
                tool_calls += calls
            finally:
                for fork in forks:
                    toolbox.drop(fork)
            if on_iteration is not None:
                on_iteration(record)
    finally:
        toolbox.drop(session)
    cost = policy.cost().model_copy(update={"tool_calls": tool_calls})
    usage = getattr(policy, "usage", None)  # a policy that talks to a model server
    traffic = usage() if callable(usage) else None
    return SampleOutcome(seed, workflow, trace, cost, list(policy.cache_keys()), candidate_tools(toolbox, workflow),
                         model_requests=getattr(traffic, "requests", 0), cache_hits=getattr(traffic, "cache_hits", 0))


def _text_check(terms: TermsOf) -> Callable[[Workflow, str, str], str]:
    """The validity of an update's text for its chains: solvable, grounded, coherent."""

    def check(workflow: Workflow, query: str, answer: str) -> str:
        return validity_problem(workflow.chains, query, answer, terms)

    return check

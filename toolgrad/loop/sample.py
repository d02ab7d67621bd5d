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
  the value; chain :data:`THIS_EXECUTION` names an earlier call of the same execution by
  position), else found by value: a string of 3+ characters or a number other than 0/1 equal to
  a scalar in an earlier step's response (earlier in replay order; the latest such step wins).
* **Deterministic.** The mini-batch is drawn from ``sha256(seed, iteration, tool name)``; the
  rest is the policy's business (the offline policy is deterministic; a model policy is, given
  its record/replay cache).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from toolgrad.backends.base import CacheMiss, EndpointError, ModelError
from toolgrad.records import (
    ArgumentSource,
    Chain,
    Cost,
    Execution,
    Iteration,
    Proposal,
    Selection,
    Step,
    Trace,
)
from toolgrad.sampling import stable_sample
from toolgrad.toolbox import Toolbox, ToolResult
from toolgrad.validity.checks import validity_problem
from toolgrad.validity.tool_terms import TermsOf, toolbox_terms

from .policy import Context, ExecutedCall, Policy, StageError, Workflow, forbidden_names, query_problem
from .sources import EarlierStep, SourceFinder

STAGES = ("propose", "execute", "select", "update")
# In ExecutedCall.sources, this chain index names the n-th earlier call of the same execution
# (whose final place is known only once the selection is applied).
THIS_EXECUTION = -1
ERROR_KEYS = frozenset({"error", "errors", "message", "detail"})


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
    candidate_tools: list[dict[str, Any]] = field(default_factory=list)
    # what varies between a recorded run and its replay: for the run summary, not the record
    model_requests: int = 0  # HTTP requests sent to the model server (retries included)
    cache_hits: int = 0  # model calls answered from the record/replay cache

    @property
    def ok(self) -> bool:
        return bool(self.workflow.chains) and bool(self.workflow.query)

    def calls(self) -> int:
        return sum(len(c.steps) for c in self.workflow.chains)


# -- the rule-based validator ---------------------------------------------------------------


def is_empty(body: Any) -> bool:
    if body is None:
        return True
    if isinstance(body, str):
        return not body.strip()
    return isinstance(body, (dict, list)) and not body


def is_error_like(body: Any) -> bool:
    """A body that reports an error rather than data (whatever the status said)."""
    if isinstance(body, dict):
        if set(body) <= ERROR_KEYS:
            return True
        return bool(body.get("error"))
    if isinstance(body, str):
        return body.strip().lower().startswith(("error", "exception", "traceback"))
    return False


def failure_reason(result: ToolResult) -> str:
    """Why the validator fails a call ("" when it passes)."""
    if result.status == 0:
        return f"{result.tool}: call not made: {result.error or 'no status'}"
    if not 200 <= result.status < 300:
        return f"{result.tool}: HTTP {result.status}"
    # no body at all is what a spec-documented "no content" write answers (204, or a 200
    # whose response has no content): a success; an empty object/list/string is not
    if result.body is not None and is_empty(result.body):
        return f"{result.tool}: empty response"
    if is_error_like(result.body):
        return f"{result.tool}: error-like response"
    return ""


# -- the query check ------------------------------------------------------------------------


def api_names(toolbox: Toolbox) -> list[str]:
    """Names a query must not contain, over every tool of ``toolbox`` (see :func:`forbidden_names`)."""
    return forbidden_names((bound.name, bound.tool.operation_id) for bound in toolbox.tools.values())


# -- the loop -------------------------------------------------------------------------------


def draw_batch(names: list[str], size: int, seed: int, iteration: int) -> list[str]:
    """The iteration's mini-batch: ``size`` tools (all when fewer), drawn from (seed, iteration)."""
    return stable_sample(sorted(names), size, "batch", seed, iteration)


def _step(toolbox: Toolbox, result: ToolResult, sources: dict[str, ArgumentSource]) -> Step:
    bound = toolbox.tools.get(result.tool)
    return Step(
        env=bound.env if bound else "",
        tool=result.tool,
        operation_id=bound.tool.operation_id if bound else "",
        arguments=dict(result.arguments),
        sources=sources,
        status=result.status,
        response=result.body,
        state_hash=result.state_hash,
    )


def _earlier(workflow: Workflow, upto_chain: int | None = None) -> list[EarlierStep]:
    chains = workflow.chains if upto_chain is None else workflow.chains[: upto_chain + 1]
    return [(ci, si, s.response) for ci, c in enumerate(chains) for si, s in enumerate(c.steps)]


def _place(
    workflow: Workflow, toolbox: Toolbox, results: list[ToolResult],
    declared: list[dict[str, tuple[int, int, str]]], chain: int, finder: SourceFinder,
) -> list[Step]:
    """Steps for ``results`` appended to ``chain`` (== len(chains): a new one), with sources
    found among the steps that precede them in replay order. A declared source with chain
    :data:`THIS_EXECUTION` names an earlier call of the same execution by its position."""
    earlier = _earlier(workflow, min(chain, len(workflow.chains) - 1) if workflow.chains else -1)
    start = len(workflow.chains[chain].steps) if chain < len(workflow.chains) else 0
    steps: list[Step] = []
    for offset, result in enumerate(results):
        claims = {name: ((chain, start + s, p) if c == THIS_EXECUTION else (c, s, p))
                  for name, (c, s, p) in declared[offset].items() if c != THIS_EXECUTION or s < offset}
        sources = finder.detect(result.arguments, earlier, claims)
        steps.append(_step(toolbox, result, sources))
        earlier.append((chain, start + offset, result.body))
    return steps


class _Executor:
    """Runs one proposal in its fork; keeps the log of what really ran."""

    def __init__(self, toolbox: Toolbox, fork: str, proposal: Proposal, limit: int) -> None:
        self.toolbox = toolbox
        self.fork = fork
        self.allowed = set(proposal.tools)
        self.limit = limit
        self.log: list[ToolResult] = []

    def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        args = arguments if isinstance(arguments, dict) else {}
        if len(self.log) >= self.limit:
            result = ToolResult(name, args, 0, None, "", f"agent step limit ({self.limit}) reached")
        elif name not in self.allowed:
            result = ToolResult(name, args, 0, None, "", f"tool {name!r} is not part of this proposal")
        else:
            result = self.toolbox.call(self.fork, name, args)
        self.log.append(result)
        return result


def _declared(log: list[ToolResult], executed: list[ExecutedCall]) -> list[dict[str, tuple[int, int, str]]]:
    by_identity = {id(ec.result): ec.sources for ec in executed}
    return [dict(by_identity.get(id(result), {})) for result in log]


def _normalise_proposals(raw: list[Proposal], batch: set[str], k: int, max_tools: int) -> list[Proposal]:
    proposals = []
    for p in raw[:k]:
        tools = [t for t in p.tools if t in batch][:max_tools]
        if tools:
            proposals.append(Proposal(instruction=p.instruction, tools=tools))
    return proposals


def _order_safe_chain(workflow: Workflow, selection: Selection, envs: set[str]) -> tuple[Selection, int]:
    """The chain the new steps go to, and the selection as the loop applied it."""
    n = len(workflow.chains)
    if selection.action != "extend":
        return Selection(proposal=selection.proposal, action="new", chain=None, rationale=selection.rationale), n
    chain = selection.chain if selection.chain is not None else n - 1
    if chain < 0 or chain >= n:
        return Selection(
            proposal=selection.proposal, action="new", chain=None,
            rationale=f"{selection.rationale} [loop: no chain {selection.chain} to extend; started a new chain]",
        ), n
    later = {s.env for c in workflow.chains[chain + 1:] for s in c.steps}
    clash = sorted(envs & later)
    if clash:
        return Selection(
            proposal=selection.proposal, action="new", chain=None,
            rationale=(f"{selection.rationale} [loop: appended as a new chain: extending chain {chain} would "
                       f"replay its calls to {', '.join(clash)} out of execution order]"),
        ), n
    return Selection(proposal=selection.proposal, action="extend", chain=chain, rationale=selection.rationale), chain


def _with_steps(workflow: Workflow, chain: int, steps: list[Step]) -> Workflow:
    chains = list(workflow.chains)
    if chain < len(chains):
        chains[chain] = Chain(steps=[*chains[chain].steps, *steps])
    else:
        chains.append(Chain(steps=steps))
    return Workflow(chains=chains, query=workflow.query, answer=workflow.answer)


def candidate_tools(toolbox: Toolbox, workflow: Workflow) -> list[dict[str, Any]]:
    """OpenAI specs of the tools the chains use, in order of first use."""
    seen: list[str] = []
    for _, _, step in workflow.steps():
        if step.tool not in seen:
            seen.append(step.tool)
    return toolbox.openai_tools(seen)


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
    names = toolbox.names()
    workflow = Workflow()
    trace = Trace()
    tool_calls = 0
    finder = SourceFinder()
    try:
        for i in range(config.iterations):
            batch_names = draw_batch(names, config.batch_size, seed, i)
            record = Iteration(iteration=i, batch=batch_names)
            trace.iterations.append(record)
            ctx = Context(seed=seed, iteration=i, batch=[toolbox.tools[n] for n in batch_names],
                          workflow=workflow, k=config.proposals, max_agent_steps=config.max_agent_steps,
                          check_text=check)
            forks: list[str] = []
            try:
                workflow, calls = _iterate(toolbox, policy, ctx, config, session, record, forks, forbidden, finder)
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


def _fail(record: Iteration, stage: str, error: str) -> None:
    record.failed_stage = stage
    record.error = error


def _iterate(
    toolbox: Toolbox, policy: Policy, ctx: Context, config: GeneratorConfig, session: str,
    record: Iteration, forks: list[str], forbidden: list[str], finder: SourceFinder,
) -> tuple[Workflow, int]:
    """One iteration; returns the (possibly updated) workflow and the number of calls made."""
    workflow = ctx.workflow
    # 1. propose
    try:
        raw = policy.propose(ctx)
    except (CacheMiss, EndpointError):
        raise  # a replay-only miss or a failed endpoint: stop the run, do not record a failed stage
    except (StageError, ModelError) as exc:
        _fail(record, "propose", _reason(exc))
        return workflow, 0
    proposals = _normalise_proposals(raw, set(record.batch), ctx.k, config.max_proposal_tools)
    record.proposals = proposals
    if not proposals:
        _fail(record, "propose", "no proposal with tools from the batch")
        return workflow, 0

    # 2. execute, each proposal in its own fork
    calls = 0
    logs: dict[int, tuple[list[ToolResult], list[dict[str, tuple[int, int, str]]]]] = {}
    provisional = len(workflow.chains)
    for j, proposal in enumerate(proposals):
        fork = f"{session}/it{ctx.iteration}/p{j}"
        forks.append(fork)
        toolbox.fork(session, fork)
        executor = _Executor(toolbox, fork, proposal, ctx.max_agent_steps)
        reason = ""
        executed: list[ExecutedCall] = []
        try:
            executed = policy.execute(ctx, proposal, executor.call)
        except (CacheMiss, EndpointError):
            raise  # a replay-only miss or a failed endpoint: stop the run, do not record a failed stage
        except (StageError, ModelError) as exc:
            reason = _reason(exc)
        calls += len(executor.log)
        declared = _declared(executor.log, executed)
        reason = reason or next((r for r in map(failure_reason, executor.log) if r), "")
        if not reason and not executor.log:
            reason = "no call made"
        steps = _place(workflow, toolbox, executor.log, declared, provisional, finder)
        record.executions.append(Execution(proposal=j, ok=not reason, steps=steps, reason=reason))
        if not reason:
            logs[j] = (executor.log, declared)
    if not logs:
        summary = "; ".join(f"p{e.proposal}: {e.reason}" for e in record.executions)
        _fail(record, "execute", f"no proposal succeeded ({summary})")
        return workflow, calls

    # 3. select
    candidates = [(e.proposal, e.steps) for e in record.executions if e.ok]
    try:
        selection = policy.select(ctx, candidates)
    except (CacheMiss, EndpointError):
        raise  # a replay-only miss or a failed endpoint: stop the run, do not record a failed stage
    except (StageError, ModelError) as exc:
        _fail(record, "select", _reason(exc))
        return workflow, calls
    record.selection = selection
    if selection.action == "reject" or selection.proposal is None:
        return workflow, calls
    if selection.proposal not in logs:
        _fail(record, "select", f"proposal {selection.proposal} is not a successful execution")
        return workflow, calls
    if selection.action not in ("extend", "new"):
        _fail(record, "select", f"unknown action {selection.action!r} (extend, new or reject)")
        return workflow, calls
    log, declared = logs[selection.proposal]
    envs = {toolbox.tools[r.tool].env for r in log}
    applied, chain = _order_safe_chain(workflow, selection, envs)
    record.selection = applied

    # 4. update
    steps = _place(workflow, toolbox, log, declared, chain, finder)
    candidate = _with_steps(workflow, chain, steps)
    try:
        query, answer = policy.update(ctx, applied, candidate)
    except (CacheMiss, EndpointError):
        raise  # a replay-only miss or a failed endpoint: stop the run, do not record a failed stage
    except (StageError, ModelError) as exc:
        _fail(record, "update", _reason(exc))
        return workflow, calls
    problem = query_problem(query, answer, forbidden) or ctx.check_text(candidate, query, answer)
    if problem:
        record.query, record.answer = query, answer
        _fail(record, "update", problem)
        return workflow, calls
    candidate.query, candidate.answer = query, answer
    record.query, record.answer = query, answer
    # the chosen fork becomes the sample's state: the chains hold exactly what ran
    toolbox.fork(f"{session}/it{ctx.iteration}/p{selection.proposal}", session)
    return candidate, calls


def _reason(exc: Exception) -> str:
    if isinstance(exc, StageError):
        return exc.reason
    return f"{type(exc).__name__}: {exc}"

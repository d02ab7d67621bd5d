"""One iteration of the answer-first loop, stage by stage: propose, execute, select, update.

Each stage either hands the next one its input or records why it failed on the iteration's
:class:`~toolgrad.records.Iteration` (``failed_stage``, ``error``) and ends the iteration with
the workflow unchanged. A replay-only cache miss or a failed model endpoint is never recorded:
it stops the run. See :mod:`toolgrad.loop.sample` for the guarantees the stages keep together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolgrad.backends.base import CacheMiss, EndpointError, ModelError
from toolgrad.records import ArgumentSource, Chain, Execution, Iteration, Proposal, Selection, Step
from toolgrad.toolbox import Toolbox, ToolResult

from .policy import Context, ExecutedCall, Policy, StageError, Workflow, query_problem
from .sources import EarlierStep, SourceFinder
from .validator import failure_reason

# In ExecutedCall.sources, this chain index names the n-th earlier call of the same execution
# (whose final place is known only once the selection is applied).
THIS_EXECUTION = -1

Declared = list[dict[str, tuple[int, int, str]]]


@dataclass(slots=True)
class Stage:
    """What one iteration works with, besides the policy's :class:`Context`."""

    toolbox: Toolbox
    policy: Policy
    ctx: Context
    session: str
    record: Iteration
    forks: list[str]  # every fork made, for the caller to drop
    forbidden: list[str]  # names a query must not contain
    finder: SourceFinder
    max_proposal_tools: int


def run_iteration(stage: Stage) -> tuple[Workflow, int]:
    """One iteration; returns the (possibly updated) workflow and the number of calls made."""
    workflow = stage.ctx.workflow
    proposals = _propose(stage)
    if not proposals:
        return workflow, 0
    logs, calls = _execute(stage, proposals)
    if not logs:
        return workflow, calls
    chosen = _select(stage, logs)
    if chosen is None:
        return workflow, calls
    return _update(stage, chosen), calls


def _propose(stage: Stage) -> list[Proposal]:
    """The policy's proposals, cut to the batch, k and the tool limit ([] when none is left)."""
    record = stage.record
    try:
        raw = stage.policy.propose(stage.ctx)
    except (CacheMiss, EndpointError):
        raise  # a replay-only miss or a failed endpoint: stop the run, do not record a failed stage
    except (StageError, ModelError) as exc:
        _fail(record, "propose", _reason(exc))
        return []
    proposals = _normalise_proposals(raw, set(record.batch), stage.ctx.k, stage.max_proposal_tools)
    record.proposals = proposals
    if not proposals:
        _fail(record, "propose", "no proposal with tools from the batch")
    return proposals


def _execute(stage: Stage, proposals: list[Proposal]) -> tuple[dict[int, tuple[list[ToolResult], Declared]], int]:
    """Runs each proposal in its own fork; the logs of the successful ones by proposal index,
    and the number of calls made."""
    calls = 0
    logs: dict[int, tuple[list[ToolResult], Declared]] = {}
    for j, proposal in enumerate(proposals):
        execution, log, declared = _execute_one(stage, j, proposal)
        calls += len(log)
        stage.record.executions.append(execution)
        if execution.ok:
            logs[j] = (log, declared)
    if not logs:
        summary = "; ".join(f"p{e.proposal}: {e.reason}" for e in stage.record.executions)
        _fail(stage.record, "execute", f"no proposal succeeded ({summary})")
    return logs, calls


def _execute_one(stage: Stage, j: int, proposal: Proposal) -> tuple[Execution, list[ToolResult], Declared]:
    fork = f"{stage.session}/it{stage.ctx.iteration}/p{j}"
    stage.forks.append(fork)
    stage.toolbox.fork(stage.session, fork)
    executor = _Executor(stage.toolbox, fork, proposal, stage.ctx.max_agent_steps)
    reason = ""
    executed: list[ExecutedCall] = []
    try:
        executed = stage.policy.execute(stage.ctx, proposal, executor.call)
    except (CacheMiss, EndpointError):
        raise  # a replay-only miss or a failed endpoint: stop the run, do not record a failed stage
    except (StageError, ModelError) as exc:
        reason = _reason(exc)
    declared = _declared(executor.log, executed)
    reason = reason or next((r for r in map(failure_reason, executor.log) if r), "")
    if not reason and not executor.log:
        reason = "no call made"
    workflow = stage.ctx.workflow
    steps = _place(workflow, stage.toolbox, executor.log, declared, len(workflow.chains), stage.finder)
    return Execution(proposal=j, ok=not reason, steps=steps, reason=reason), executor.log, declared


@dataclass(frozen=True, slots=True)
class _Chosen:
    """The selection as the loop applies it, the chain its steps go to, and what ran."""

    selection: Selection
    chain: int  # == len(chains): a new chain
    log: list[ToolResult]
    declared: Declared


def _select(stage: Stage, logs: dict[int, tuple[list[ToolResult], Declared]]) -> _Chosen | None:
    """The execution the policy selected, as the loop applies it (None: nothing to apply)."""
    record = stage.record
    candidates = [(e.proposal, e.steps) for e in record.executions if e.ok]
    try:
        selection = stage.policy.select(stage.ctx, candidates)
    except (CacheMiss, EndpointError):
        raise  # a replay-only miss or a failed endpoint: stop the run, do not record a failed stage
    except (StageError, ModelError) as exc:
        _fail(record, "select", _reason(exc))
        return None
    record.selection = selection
    if selection.action == "reject" or selection.proposal is None:
        return None
    if selection.proposal not in logs:
        _fail(record, "select", f"proposal {selection.proposal} is not a successful execution")
        return None
    if selection.action not in ("extend", "new"):
        _fail(record, "select", f"unknown action {selection.action!r} (extend, new or reject)")
        return None
    log, declared = logs[selection.proposal]
    envs = {stage.toolbox.tools[r.tool].env for r in log}
    applied, chain = _order_safe_chain(stage.ctx.workflow, selection, envs)
    record.selection = applied
    return _Chosen(applied, chain, log, declared)


def _update(stage: Stage, chosen: _Chosen) -> Workflow:
    """The workflow with the chosen steps and the policy's rewritten query/answer, or the old
    workflow when the update fails or its text is not valid."""
    record, ctx, workflow = stage.record, stage.ctx, stage.ctx.workflow
    if chosen.chain == len(workflow.chains):  # a new chain: placed as its execution was, the same steps
        steps = next(e.steps for e in record.executions if e.proposal == chosen.selection.proposal)
    else:
        steps = _place(workflow, stage.toolbox, chosen.log, chosen.declared, chosen.chain, stage.finder)
    candidate = _with_steps(workflow, chosen.chain, steps)
    try:
        query, answer = stage.policy.update(ctx, chosen.selection, candidate)
    except (CacheMiss, EndpointError):
        raise  # a replay-only miss or a failed endpoint: stop the run, do not record a failed stage
    except (StageError, ModelError) as exc:
        _fail(record, "update", _reason(exc))
        return workflow
    problem = query_problem(query, answer, stage.forbidden) or ctx.check_text(candidate, query, answer)
    if problem:
        record.query, record.answer = query, answer
        _fail(record, "update", problem)
        return workflow
    candidate.query, candidate.answer = query, answer
    record.query, record.answer = query, answer
    # the chosen fork becomes the sample's state: the chains hold exactly what ran
    stage.toolbox.fork(f"{stage.session}/it{ctx.iteration}/p{chosen.selection.proposal}", stage.session)
    return candidate


def _fail(record: Iteration, stage: str, error: str) -> None:
    record.failed_stage = stage
    record.error = error


def _reason(exc: Exception) -> str:
    if isinstance(exc, StageError):
        return exc.reason
    return f"{type(exc).__name__}: {exc}"


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


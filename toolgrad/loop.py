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
  query/answer; a stage that fails (a :class:`~toolgrad.policy.StageError`, a model error, a
  query that names an API) is recorded with ``failed_stage`` and ``error``, and the loop moves
  on to the next iteration with the workflow unchanged.
* **Sources.** A step's argument sources are what the policy declared (kept only when the
  pointer resolves to the argument's value; chain :data:`THIS_EXECUTION` names an earlier call
  of the same execution by position), else found by value: a string of 3+ characters or a
  number other than 0/1 equal to a scalar in an earlier step's response (earlier in replay
  order; the latest such step wins).
* **Deterministic.** The mini-batch is drawn from ``sha256(seed, iteration, tool name)``; the
  rest is the policy's business (the offline policy is deterministic; a model policy is, given
  its record/replay cache).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .llm.base import CacheMiss, ModelError
from .policy import Context, ExecutedCall, Policy, StageError, Workflow, forbidden_names, query_problem
from .records import ArgumentSource, Chain, Cost, Execution, Iteration, Proposal, Selection, Step, Trace
from .sampling import stable_sample
from .toolbox import Toolbox, ToolResult

STAGES = ("propose", "execute", "select", "update")
# In ExecutedCall.sources, this chain index names the n-th earlier call of the same execution
# (whose final place is known only once the selection is applied).
THIS_EXECUTION = -1
ERROR_KEYS = frozenset({"error", "errors", "message", "detail"})
_MAX_WALK = 20_000  # JSON nodes searched per response when detecting argument sources


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


# -- argument sources -----------------------------------------------------------------------


def escape_pointer_token(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def resolve_pointer(document: Any, pointer: str) -> tuple[bool, Any]:
    """(found, value) for an RFC 6901 pointer."""
    if pointer == "":
        return True, document
    if not pointer.startswith("/"):
        return False, None
    node = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False, None
    return True, node


def is_nontrivial(value: Any) -> bool:
    """Values worth tracing to an earlier output: strings of 3+ characters, numbers not 0/1."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return len(value) >= 3
    if isinstance(value, (int, float)):
        return value not in (0, 1)
    return False


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    # a numeric id given as a path string ("12") is the same value as 12
    if isinstance(a, str) and isinstance(b, int):
        return a == str(b)
    if isinstance(a, int) and isinstance(b, str):
        return str(a) == b
    return False


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def names_related(argument: str, key: str) -> bool:
    """``petId`` ~ ``id``, ``feed_key`` ~ ``key``, ``username`` ~ ``username``."""
    a, k = _norm(argument), _norm(key)
    if not a or not k:
        return False
    return a == k or (a.endswith(k) and k in ("id", "key", "name", "uuid", "slug")) or k.endswith(a)


def _walk(node: Any, budget: int) -> Iterator[tuple[str, int, str, Any]]:
    """(pointer, depth, last key, scalar) for every scalar, breadth-first per level."""
    queue: list[tuple[str, int, str, Any]] = [("", 0, "", node)]
    while queue and budget > 0:
        nxt: list[tuple[str, int, str, Any]] = []
        for ptr, d, key, value in queue:
            budget -= 1
            if isinstance(value, dict):
                nxt.extend((f"{ptr}/{escape_pointer_token(str(k))}", d + 1, str(k), v) for k, v in value.items())
            elif isinstance(value, list):
                nxt.extend((f"{ptr}/{i}", d + 1, key, v) for i, v in enumerate(value))
            else:
                yield ptr, d, key, value
        queue = nxt


def _lookup_keys(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, str):
        keys: list[tuple[str, Any]] = [("s", value)]
        if value.lstrip("-").isdigit() and len(value) < 19:
            keys.append(("n", float(int(value))))
        return keys
    if isinstance(value, int):
        return [("n", float(value)), ("s", str(value))]
    if isinstance(value, float):
        return [("n", value)]
    return []


class ScalarIndex:
    """Every scalar of a response by value, to find where an argument's value came from."""

    def __init__(self, body: Any) -> None:
        self.hits: dict[tuple[str, Any], list[tuple[str, int, str, int, Any]]] = {}
        for order, (ptr, depth, key, scalar) in enumerate(_walk(body, _MAX_WALK)):
            for lookup in _lookup_keys(scalar)[:1]:
                self.hits.setdefault(lookup, []).append((ptr, depth, key, order, scalar))

    def find(self, argument: str, value: Any) -> str | None:
        """The best pointer to ``value``: a related key first, then the shallowest, then the first
        in document order."""
        best: tuple[int, int, int] | None = None
        found = None
        for lookup in _lookup_keys(value):
            for ptr, depth, key, order, scalar in self.hits.get(lookup, ()):
                if same_value(value, scalar):
                    rank = (0 if names_related(argument, key) else 1, depth, order)
                    if best is None or rank < best:
                        best, found = rank, ptr
        return found


def find_pointer(response: Any, argument: str, value: Any) -> str | None:
    """The best pointer to ``value`` in ``response`` (see :meth:`ScalarIndex.find`)."""
    return ScalarIndex(response).find(argument, value)


EarlierStep = tuple[int, int, Any]  # (chain, step, response body)


class SourceFinder:
    """:func:`detect_sources` with each response indexed once (responses are held, so the
    ``id``-keyed cache cannot be confused by a reused id)."""

    def __init__(self) -> None:
        self._indexes: dict[int, tuple[Any, ScalarIndex]] = {}

    def index(self, body: Any) -> ScalarIndex:
        hit = self._indexes.get(id(body))
        if hit is None or hit[0] is not body:
            hit = self._indexes[id(body)] = (body, ScalarIndex(body))
        return hit[1]

    def detect(
        self,
        arguments: dict[str, Any],
        earlier: list[EarlierStep],
        declared: dict[str, tuple[int, int, str]] | None = None,
    ) -> dict[str, ArgumentSource]:
        by_place = {(c, s): body for c, s, body in earlier}
        sources: dict[str, ArgumentSource] = {}
        for name in sorted(arguments):
            value = arguments[name]
            claim = (declared or {}).get(name)
            if claim is not None:
                chain, step, pointer = claim
                if (chain, step) in by_place:
                    ok, found = resolve_pointer(by_place[(chain, step)], pointer)
                    if ok and (found == value or same_value(value, found)):
                        sources[name] = ArgumentSource(chain=chain, step=step, pointer=pointer)
                        continue
            if not is_nontrivial(value):
                continue
            for chain, step, body in reversed(earlier):
                found_at = self.index(body).find(name, value)
                if found_at is not None:
                    sources[name] = ArgumentSource(chain=chain, step=step, pointer=found_at)
                    break
        return sources


def detect_sources(
    arguments: dict[str, Any],
    earlier: list[EarlierStep],
    declared: dict[str, tuple[int, int, str]] | None = None,
) -> dict[str, ArgumentSource]:
    """Where each argument's value came from. A declared source is kept when its pointer
    resolves, in one of ``earlier``, to the argument's value; other non-trivial scalar arguments
    are matched against earlier responses, the latest earlier step first."""
    return SourceFinder().detect(arguments, earlier, declared)


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
                          workflow=workflow, k=config.proposals, max_agent_steps=config.max_agent_steps)
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
    except CacheMiss:
        raise  # replay-only miss: stop the run, do not record a failed stage
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
        except CacheMiss:
            raise  # replay-only miss: stop the run, do not record a failed stage
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
    except CacheMiss:
        raise  # replay-only miss: stop the run, do not record a failed stage
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
    except CacheMiss:
        raise  # replay-only miss: stop the run, do not record a failed stage
    except (StageError, ModelError) as exc:
        _fail(record, "update", _reason(exc))
        return workflow, calls
    problem = query_problem(query, answer, forbidden)
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

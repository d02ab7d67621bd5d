"""DFSDT's search for one seed: the tree, one backend decision per node expansion, the trace.

A backend (:class:`SearchBackend`: a chat model in :mod:`benchmarks.baseline.dfs_model`, or the offline
policy in :mod:`benchmarks.baseline.dfs_offline`) writes the query and, at each expansion, returns one
:class:`Move`; this module owns the sandbox sessions, the tree walk and the record of it. The
walk is ToolBench's ``DFS_tree_search.DFS`` with ``with_filter=False``: each node makes up to
``width`` children one at a time and searches each child's subtree before making the next; a
child's return value says how many levels to go back (1: try the node's next child; 2 after a
``give_up_and_restart``: abandon the node that gave up); the first ``give_answer`` ends it. See
:mod:`benchmarks.baseline.dfs` for what is recorded and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from toolgrad.backends.base import CacheMiss, ModelError
from toolgrad.loop.policy import CallFn, StageError
from toolgrad.loop.sources import detect_sources
from toolgrad.records import Cost, Execution, Iteration, Proposal, Selection, Step, Trace
from toolgrad.toolbox import Toolbox, ToolResult

from .budget import Spent

FINISH = "Finish"
GIVE_ANSWER, GIVE_UP = "give_answer", "give_up_and_restart"
_STOP = 100_000  # "go back past the root": solved, or the budget is spent

MoveKind = Literal["call", "answer", "give_up", "thought", "invalid", "error"]


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    tools: tuple[str, ...]  # the tools the writer says the request needs (ToolBench's relevant APIs)
    pinned: dict[str, dict[str, Any]] = field(default_factory=dict)  # offline: tool -> values the request states


@dataclass(frozen=True, slots=True)
class Turn:
    """One assistant turn on a path, as the model is shown it again: its thought, and the
    function it called (a tool, :data:`FINISH`, or "" for a thought alone) with the result."""

    thought: str = ""
    function: str = ""
    arguments: str = ""  # JSON text, as the model wrote it
    observation: str = ""  # what the model is shown as the function's result

    def nodes(self) -> int:
        """Tree nodes the turn adds, as ToolBench counts depth: its thought, when it has text,
        and the action and its input, when it calls a function."""
        return (1 if self.thought or not self.function else 0) + (2 if self.function else 0)


@dataclass(frozen=True, slots=True)
class Move:
    """What one expansion did. ``call``: a tool call was made (``result``); ``answer`` and
    ``give_up``: ``Finish``; ``thought``: text without a call; ``invalid``: a function call that
    could not be made (unknown tool, arguments not an object, ``Finish`` without its fields);
    ``error``: no usable reply from the model."""

    kind: MoveKind
    turn: Turn
    result: ToolResult | None = None
    sources: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # declared argument sources
    answer: str = ""
    note: str = ""


@dataclass(slots=True)
class Node:
    session: str  # the sandbox session holding the path's effects
    depth: int  # tree nodes from the root
    path: tuple[Turn, ...]
    steps: tuple[Step, ...]  # the path's calls that returned a 2xx: the chain if it is solved here
    children: int = 0  # children made so far
    tried: list[Turn] = field(default_factory=list)  # the children's function calls, for the diversity prompt
    failed: bool = False  # this node's own function call did not succeed
    plan: list[Any] | None = None  # the offline backend's ranked candidates


class SearchBackend(Protocol):
    """What decides: one :meth:`expand` is one model call (one decision offline)."""

    name: str

    def write_query(self, seed: int, pool: list[str]) -> Query: ...

    def expand(self, seed: int, query: Query, pool: list[str], node: Node, call: CallFn) -> Move:
        """The node's next child. ``call(name, arguments)`` makes the one tool call allowed, in
        the child's own fork of ``node.session``."""
        ...

    def used(self) -> int:
        """What the budget counts so far for this seed: model calls (decisions offline)."""
        ...

    def spent(self) -> Spent: ...

    def decisions(self) -> int: ...

    def cost(self) -> Cost: ...

    def cache_keys(self) -> list[str]: ...


class DecisionCounter:
    """The accounting of a backend that calls no model: each decision counted, nothing spent."""

    _decisions = 0

    def decide(self) -> None:
        self._decisions += 1

    def used(self) -> int:
        return self._decisions

    def decisions(self) -> int:
        return self._decisions

    def spent(self) -> Spent:
        return Spent()

    def cost(self) -> Cost:
        return Cost()

    def cache_keys(self) -> list[str]:
        return []


@dataclass(slots=True)
class SearchOutcome:
    seed: int
    query: Query | None
    steps: tuple[Step, ...]  # the solved path's chain (() when unsolved)
    answer: str
    trace: Trace
    cost: Cost
    cache_keys: list[str]
    spent: Spent
    decisions: int  # model calls with a model; the query + one per expansion offline
    expansions: int
    error: str = ""  # why it is unsolved

    @property
    def solved(self) -> bool:
        return bool(self.steps) and bool(self.answer) and not self.error


def _reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, StageError) else f"{type(exc).__name__}: {exc}"


class _Search:
    """One seed's tree: sessions made, calls counted, every expansion in the trace."""

    def __init__(self, toolbox: Toolbox, backend: SearchBackend, seed: int, pool: list[str], query: Query,
                 trace: Trace, *, width: int, max_depth: int, max_model_calls: int) -> None:
        self.toolbox, self.backend, self.seed, self.pool, self.query = toolbox, backend, seed, pool, query
        self.trace = trace
        self.width, self.max_depth, self.max_model_calls = width, max_depth, max_model_calls
        self.root = f"dfs-{seed}"
        self.sessions: list[str] = []
        self.tool_calls = 0
        self.expansions = 0
        self.solution: Node | None = None
        self.answer = ""
        self.out_of_budget = False

    def visit(self, node: Node, back: int = 0) -> int:
        """Search below ``node``; how many levels to go back (ToolBench's return value)."""
        if back:  # a pruned child: nothing to search below it
            return back
        if node.depth >= self.max_depth:
            return 1
        for _ in range(self.width):
            if self.backend.used() >= self.max_model_calls:
                self.out_of_budget = True
                return _STOP
            child, child_back = self.expand(node)
            if self.solution is not None:
                return _STOP
            result = self.visit(child, child_back)
            if result >= _STOP:
                return _STOP
            if result > 1:
                return result - 1
        return 1

    def expand(self, node: Node) -> tuple[Node, int]:
        """One model call at ``node``: the child it makes, and 0 (search it) or how far to go back."""
        self.expansions += 1
        session = f"{self.root}/{self.expansions}"
        log: list[ToolResult] = []

        def call(name: str, arguments: dict[str, Any]) -> ToolResult:
            args = arguments if isinstance(arguments, dict) else {}
            if log:
                return ToolResult(name, args, 0, None, "", "one call per expansion")
            self.toolbox.fork(node.session, session)
            self.sessions.append(session)
            log.append(self.toolbox.call(session, name, args))
            return log[0]

        try:
            move = self.backend.expand(self.seed, self.query, self.pool, node, call)
        except CacheMiss:  # a replay that misses is a broken run, not a pruned branch
            raise
        except (StageError, ModelError) as exc:
            move = Move("error", Turn(thought=""), note=_reason(exc))
        self.tool_calls += len(log)
        node.children += 1
        if move.turn.function:
            node.tried.append(move.turn)
        child, back = self._child(node, move, session if log else node.session)
        self._record(node, move, child)
        return child, back

    def _child(self, node: Node, move: Move, session: str) -> tuple[Node, int]:
        steps = node.steps
        result = move.result
        ok = result is not None and 200 <= result.status < 300 and not result.error
        if move.kind == "call" and result is not None and ok:
            steps = (*steps, self._step(result, list(steps), move.sources))
        child = Node(session, node.depth + move.turn.nodes(), (*node.path, move.turn), steps,
                     failed=move.kind in ("invalid", "error", "give_up") or (move.kind == "call" and not ok))
        if move.kind == "answer":
            self.solution, self.answer = child, move.answer
        back = {"give_up": 2, "error": 1}.get(move.kind, 0)
        return child, back

    def _step(self, result: ToolResult, earlier: list[Step], declared: dict[str, tuple[int, int, str]]) -> Step:
        bound = self.toolbox.tools.get(result.tool)
        bodies = [(0, i, s.response) for i, s in enumerate(earlier)]
        return Step(env=bound.env if bound else "", tool=result.tool,
                    operation_id=bound.tool.operation_id if bound else "", arguments=dict(result.arguments),
                    sources=detect_sources(result.arguments, bodies, declared), status=result.status,
                    response=result.body, state_hash=result.state_hash)

    def _record(self, node: Node, move: Move, child: Node) -> None:
        turn = move.turn
        record = Iteration(iteration=self.expansions, batch=[])
        record.proposals = [Proposal(instruction=f"depth {node.depth}, child {node.children}: "
                                                 f"{turn.thought[:200] or '(no thought)'}",
                                     tools=[turn.function] if turn.function in self.pool else [])]
        extended = len(child.steps) > len(node.steps)
        if move.kind == "call" and move.result is not None:
            reason = "" if extended else (move.result.error or f"HTTP {move.result.status}")
            record.executions = [Execution(proposal=0, ok=extended, reason=reason,
                                           steps=[child.steps[-1]] if extended else [])]
        if move.kind in ("invalid", "error") or (move.kind == "call" and not extended):
            record.failed_stage = "execute"
            record.error = move.note or (record.executions[0].reason if record.executions else move.kind)
        if move.kind == "answer":
            record.query, record.answer = self.query.text, move.answer
        action = "extend" if extended or move.kind == "answer" else "reject"
        record.selection = Selection(proposal=0 if action == "extend" else None, action=action,
                                     chain=0 if action == "extend" else None,
                                     rationale=_rationale(move, node.depth, child.depth))
        self.trace.iterations.append(record)


def _rationale(move: Move, depth: int, child_depth: int) -> str:
    what = {
        "call": f"called {move.turn.function}",
        "answer": "Finish(give_answer): solved",
        "give_up": "Finish(give_up_and_restart): back past this node",
        "thought": "a thought without a call",
        "invalid": f"a call that could not be made ({move.note})",
        "error": f"no usable reply ({move.note}): pruned",
    }[move.kind]
    return f"depth {depth} -> {child_depth}: {what}"


def search_sample(toolbox: Toolbox, backend: SearchBackend, seed: int, pool: list[str], *, width: int,
                  max_depth: int, max_model_calls: int) -> SearchOutcome:
    """Write the query for ``seed`` from ``pool``, then run DFSDT over ``pool`` + ``Finish``."""
    trace = Trace()
    first = Iteration(iteration=0, batch=list(pool))
    trace.iterations.append(first)
    root = f"dfs-{seed}"
    toolbox.reset(root)
    search: _Search | None = None
    try:
        try:
            query = backend.write_query(seed, pool)
        except CacheMiss:
            raise
        except (StageError, ModelError) as exc:
            first.failed_stage, first.error = "propose", _reason(exc)
            return _outcome(seed, None, backend, trace, None, f"query: {first.error}")
        first.proposals = [Proposal(instruction=query.text, tools=list(query.tools))]
        first.query = query.text
        search = _Search(toolbox, backend, seed, pool, query, trace, width=width, max_depth=max_depth,
                         max_model_calls=max_model_calls)
        search.visit(Node(root, 0, (), ()))
        return _outcome(seed, query, backend, trace, search, _why_unsolved(search))
    finally:
        for session in [root, *(search.sessions if search else [])]:
            toolbox.drop(session)


def _why_unsolved(search: _Search) -> str:
    if search.solution is not None:
        return "" if search.solution.steps else "answered before any tool call succeeded: not a tool-use sample"
    spent = f"the budget of {search.max_model_calls} model calls was spent" if search.out_of_budget else (
        "the tree was exhausted")
    return f"unsolved: {spent} after {search.expansions} expansion(s)"


def _outcome(seed: int, query: Query | None, backend: SearchBackend, trace: Trace, search: _Search | None,
             error: str) -> SearchOutcome:
    tool_calls = search.tool_calls if search else 0
    cost = backend.cost().model_copy(update={"tool_calls": tool_calls})
    solution = search.solution if search and not error else None
    return SearchOutcome(seed, query, solution.steps if solution else (), search.answer if solution and search else "",
                         trace, cost, backend.cache_keys(), backend.spent(), backend.decisions(),
                         search.expansions if search else 0, error)

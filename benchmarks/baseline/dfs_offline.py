"""DFSDT's decisions without a model: the offline policy's planning and argument filling, query-first.

* **Query.** 2-4 tools of the sampled set drawn from ``sha256(seed)``, producers first; the request
  is templated from their summaries with the offline policy's phrases, quoting values for the
  required path, query, header and cookie arguments it pins (the solver then sends exactly those).
  Written before any call, it cannot know the body values the solver will choose, nor which
  listed record a later call will use: its samples often fail ``solvable`` (that is the point
  of comparing it).
* **Expansion.** ``Finish(give_answer)`` with the offline policy's answer once every tool of the
  query has run with a 2xx on the path; ``Finish(give_up_and_restart)`` right after a call that
  failed; else the offline policy's proposals for the query's tools not yet run, ranked once per
  node, the node's n-th child making the n-th (give up when they are used up).

Each expansion and the query count one *decision* (the model call a model backend would make);
no model is called, so model calls and tokens are 0.
"""

from __future__ import annotations

from typing import Any

import orjson

from toolgrad.loop.policy import CallFn, Context, StageError, Workflow
from toolgrad.policies.offline.catalog import tool_info
from toolgrad.policies.offline.policy import OfflinePolicy
from toolgrad.policies.offline.text import as_words, say, sequence
from toolgrad.policies.offline.values import plausible
from toolgrad.records import Chain, Proposal, Selection
from toolgrad.sampling import stable_int, stable_sample
from toolgrad.toolbox import Toolbox, ToolResult

from .dfs_search import FINISH, GIVE_ANSWER, GIVE_UP, DecisionCounter, Move, Node, Query, Turn

_KIND_ORDER = {"list": 0, "create": 1, "read": 2, "action": 3, "replace": 4, "update": 4, "delete": 5}
_PINNED_LOCATIONS = ("path", "query", "header", "cookie")
_MAX_PINNED = 3  # values stated per tool


def finish_turn(return_type: str, answer: str = "") -> Turn:
    arguments = {"return_type": return_type, **({"final_answer": answer} if answer else {})}
    return Turn(function=FINISH, arguments=orjson.dumps(arguments).decode())


class OfflineBackend(DecisionCounter):
    """A :class:`~benchmarks.baseline.dfs_search.SearchBackend` over :class:`~toolgrad.policies.offline.policy.OfflinePolicy`."""

    name = "offline"

    def __init__(self, toolbox: Toolbox, settings: Any) -> None:
        self.toolbox = toolbox
        self.width = settings.width
        # a call adds 2 tree nodes (no thought): the longest path holds max_depth // 2 calls
        self.policy = OfflinePolicy(toolbox, target_calls=max(1, settings.max_depth // 2))

    def write_query(self, seed: int, pool: list[str]) -> Query:
        self.decide()
        if len(pool) < 2:
            raise StageError("propose", f"a multi-step request needs 2 tools; the set has {len(pool)}")
        size = min(len(pool), 2 + stable_int("dfs-query-size", seed) % 3)
        infos = [tool_info(self.toolbox, n) for n in stable_sample(pool, size, "dfs-query", seed)]
        infos.sort(key=lambda i: (_KIND_ORDER.get(i.kind, 3), i.name))
        clauses: list[str] = []
        pinned: dict[str, dict[str, Any]] = {}
        for info in infos:
            said: list[str] = []
            values: dict[str, Any] = {}
            for arg in info.args:
                if not arg.required or arg.feedable or arg.location not in _PINNED_LOCATIONS or len(said) >= _MAX_PINNED:
                    continue
                value = plausible(arg, ("dfs", seed, info.name))
                text = say(value)
                if text is not None:
                    values[arg.name] = value
                    said.append(f"{as_words(arg.name)} {text}")
            clauses.append(info.phrase + (" with " + ", ".join(said) if said else ""))
            if values:
                pinned[info.name] = values
        text = sequence(clauses, also=False) + " Tell me what you find."
        return Query(text, tuple(i.name for i in infos), pinned)

    def expand(self, seed: int, query: Query, pool: list[str], node: Node, call: CallFn) -> Move:
        self.decide()
        if node.failed:
            return Move("give_up", finish_turn(GIVE_UP), note="the last call failed")
        done = {s.tool for s in node.steps}
        if set(query.tools) <= done:
            answer = self._answer(seed, query, node)
            return Move("answer", finish_turn(GIVE_ANSWER, answer), answer=answer)
        ctx = self._context(seed, query, node, done)
        if node.plan is None:
            try:
                node.plan = self.policy.propose(ctx) if ctx.batch else []
            except StageError:
                node.plan = []
        if node.children >= len(node.plan):
            return Move("give_up", finish_turn(GIVE_UP), note=f"no more candidates ({len(node.plan)} planned)")
        proposal: Proposal = node.plan[node.children]
        tool = proposal.tools[0]
        pins = query.pinned

        def pinned_call(name: str, arguments: dict[str, Any]) -> ToolResult:
            return call(name, {**arguments, **pins.get(name, {})})

        try:
            executed = self.policy.execute(ctx, proposal, pinned_call)
        except StageError as exc:
            return Move("invalid", Turn(function=tool, arguments="{}", observation=exc.reason), note=exc.reason)
        if not executed:
            return Move("invalid", Turn(function=tool, arguments="{}", observation="no call made"), note="no call made")
        result = executed[0].result
        turn = Turn(function=tool, arguments=orjson.dumps(result.arguments).decode(), observation=result.content())
        return Move("call", turn, result=result, sources=dict(executed[0].sources))

    def _context(self, seed: int, query: Query, node: Node, done: set[str]) -> Context:
        batch = [self.toolbox.tools[n] for n in query.tools if n not in done]
        workflow = Workflow(chains=[Chain(steps=list(node.steps))] if node.steps else [])
        return Context(seed=seed, iteration=len(node.steps), batch=batch, workflow=workflow, k=self.width,
                       max_agent_steps=1)

    def _answer(self, seed: int, query: Query, node: Node) -> str:
        workflow = Workflow(chains=[Chain(steps=list(node.steps))], query=query.text)
        ctx = Context(seed=seed, iteration=0, batch=[], workflow=workflow, k=1, max_agent_steps=1)
        selection = Selection(proposal=0, action="extend", chain=0, rationale="")
        return self.policy.update(ctx, selection, workflow)[1]

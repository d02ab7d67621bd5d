"""The proposer's search: for each tool of the batch callable with what the workflow knows, a
plan of up to three tools in which each later tool consumes what the earlier ones produce,
grown greedily; the ``k`` best plans are proposed.

What a caller may rely on: :func:`best_plans` is a pure function of its arguments. It looks at
the tools a plan could consume from (those fed by a key the plan produced, or addressing a
record it produced) through an index built once per search, not at every tool of the batch for
every step of every plan, and it draws the ties between equal scores only where they decide
which plans are proposed; neither changes which plans those are (tests compare it with the
scan of every tool).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from toolgrad.sampling import stable_hash

from .catalog import ToolInfo


@dataclass(frozen=True, slots=True)
class Candidate:
    """A tool of the batch as the search weighs it: its score alone and its rank (a unique
    draw that breaks ties)."""

    info: ToolInfo
    record_key: str | None  # "record:<resource>" of the record it works on
    addresses: bool  # it addresses a record of its own resource (fed by that record key)
    base: float
    rank: str


class PlanIndex:
    """The batch's candidates by the planning keys that would feed them."""

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        self.fed_by: dict[str, list[Candidate]] = {}
        self.addressing: dict[str, list[Candidate]] = {}
        for c in candidates:
            for key in c.info.feed_keys:
                self.fed_by.setdefault(key, []).append(c)
            if c.addresses and c.record_key is not None:
                self.addressing.setdefault(c.record_key, []).append(c)

    def consumers(self, produced: frozenset[str], in_plan: frozenset[str]) -> dict[int, Candidate]:
        """Every candidate fed by a key in ``produced`` or addressing a record key in ``in_plan``
        (by id: each once)."""
        found: dict[int, Candidate] = {}
        for key in produced & self.fed_by.keys():
            for c in self.fed_by[key]:
                found[id(c)] = c
        for key in in_plan & self.addressing.keys():
            for c in self.addressing[key]:
                found[id(c)] = c
        return found


def next_tool(
    index: PlanIndex, tools: list[ToolInfo], keys: set[str], keys0: frozenset[str]
) -> tuple[float, str, ToolInfo] | None:
    """The best tool to add to the plan ``tools``: one callable with ``keys`` that consumes
    what the plan produces (an argument fed from it, or the record it addresses), by (score,
    rank); None when no such tool is worth it."""
    in_plan = frozenset().union(*(t.produces for t in tools))
    produced = in_plan - keys0
    best: tuple[float, str, ToolInfo] | None = None
    for c in index.consumers(produced, in_plan).values():
        nxt = c.info
        if any(nxt is t for t in tools) or (nxt.must_feed and (c.record_key is None or c.record_key not in keys)):
            continue  # in the plan already, or not callable (ToolInfo.callable_with)
        fed = nxt.fed_by(produced) if produced else 0
        if not (fed or (c.addresses and c.record_key in in_plan)):
            continue  # a later tool must consume what the earlier ones produce
        score = c.base + 1.5 * fed
        if score <= 0:
            continue  # not worth risking the proposal for
        if best is None or (score, c.rank) > best[:2]:
            best = (score, c.rank, nxt)
    return best


def grow(first: Candidate, index: PlanIndex, keys0: frozenset[str], room: int) -> tuple[float, list[ToolInfo]]:
    """The plan that starts with ``first``: (its score, its tools)."""
    tools, score = [first.info], first.base
    keys = set(keys0 | first.info.produces)
    while len(tools) < room and tools[-1].kind != "delete":
        best = next_tool(index, tools, keys, keys0)
        if best is None:
            break
        tools.append(best[2])
        score += best[0]
        keys |= best[2].produces
    return score, tools


def best_plans(
    plans: list[tuple[float, list[ToolInfo]]], k: int, tie: Callable[[list[ToolInfo]], str]
) -> list[list[ToolInfo]]:
    """The ``k`` best plans with distinct first tools, by score, then by ``tie(tools)`` (a
    stable hash): the order of ``sorted(plans, key=(-score, tie))``, the ties drawn only among
    the scores that reach the top ``k``."""
    ordered = sorted(plans, key=lambda p: -p[0])  # stable: equal scores keep their order, for now
    chosen: list[list[ToolInfo]] = []
    start = 0
    while start < len(ordered) and len(chosen) < k:
        end = start + 1
        while end < len(ordered) and ordered[end][0] == ordered[start][0]:
            end += 1
        group = [tools for _, tools in ordered[start:end]]
        if len(group) > 1:
            group.sort(key=tie)
        for tools in group:
            if len(chosen) < k and all(tools[0] is not c[0] for c in chosen):
                chosen.append(tools)
        start = end
    return chosen


def plan_tie(seed: int, iteration: int) -> Callable[[list[ToolInfo]], str]:
    """What breaks a tie between two plans of equal score: ``stable_hash(seed, iteration, names)``."""
    return lambda tools: stable_hash(seed, iteration, [t.name for t in tools])

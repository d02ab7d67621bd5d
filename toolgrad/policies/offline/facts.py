"""Facts: the scalar values a workflow has seen so far (in responses and in the arguments its
calls were given), indexed by what the offline policy looks them up by when it fills an
argument: the normalised key, the parent key + key, and the resource whose record holds them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from simulator.canonical import escape_token
from simulator.environments.resources import _WRAPPER_KEYS, Resource
from toolgrad.records import Step

from .catalog import ToolInfo
from .text import norm


class Fact(NamedTuple):
    """One value seen (a tuple: facts are made by the thousand per sample, and a frozen
    dataclass costs several times more to build)."""

    value: Any
    key: str  # the property holding it (the argument name for a value the step was given)
    norm: str  # normalised key
    parent_norm: str  # normalised parent property + key ("" at top level)
    pointer: str | None  # into the step's response; None for a value the step was given
    order: int  # position of the step (later = larger)
    place: tuple[int, int] | None  # (chain, step) when the step is in the workflow
    record_of: str | None  # resource whose record (at record level) holds the value
    record: str  # pointer of the enclosing record ("args" for given values, "-" for none)
    call: int | None = None  # position in the running execution (a step not yet in the workflow)


_new_tuple: Any = tuple.__new__

# What the walk of a response finds, before the step's position is known:
# (value, key, norm, parent_norm, pointer, record_of, record).
Walked = list[tuple[Any, str, str, str, str, str | None, str]]


def _record_roots(body: Any, res: Resource | None) -> set[str]:
    roots: list[tuple[str, Any]] = []
    if isinstance(body, list):
        roots = [(f"/{i}", item) for i, item in enumerate(body)]
    elif isinstance(body, dict):
        roots = [("", body)]
        for key in (*_WRAPPER_KEYS, "item", "result", res.name if res else ""):
            inner = body.get(key) if key else None
            if isinstance(inner, dict):
                roots.append((f"/{escape_token(key)}", inner))
            elif isinstance(inner, list):
                roots += [(f"/{escape_token(key)}/{i}", x) for i, x in enumerate(inner)]
    return {p for p, r in roots if isinstance(r, dict)}


def walk_response(response: Any, res: Resource | None) -> Walked:
    """The scalar values of a response (a bounded walk: 4,000 nodes, depth 5, 25 items a
    list), each with where it sits; a pure function of the response and the tool's resource,
    so a policy may keep it for a response it meets again."""
    roots = _record_roots(response, res) if res else set()
    found: Walked = []
    budget = [4000]
    res_name = res.name if res is not None else None

    def walk(node: Any, ptr: str, key: str, parent: str, record: str, depth: int) -> None:
        if budget[0] <= 0 or depth > 5:
            return
        budget[0] -= 1
        if isinstance(node, dict):
            rec = ptr if ptr in roots else record
            for k, v in node.items():
                walk(v, f"{ptr}/{escape_token(str(k))}", str(k), key, rec, depth + 1)
        elif isinstance(node, list):
            for i, v in enumerate(node[:25]):
                walk(v, f"{ptr}/{i}", key, parent, record, depth + 1)
        elif node is not None and not isinstance(node, bool):
            at_record = res_name is not None and record != "-" and ptr == f"{record}/{escape_token(key)}"
            found.append((node, key, norm(key), norm(parent + key) if parent else "", ptr,
                          res_name if at_record else None, record))

    walk(response, "", "", "", "-", 0)
    return found


def facts_of(
    step: Step, info: ToolInfo | None, order: int, place: tuple[int, int] | None, call: int | None = None,
    walked: Walked | None = None,
) -> list[Fact]:
    """The scalar values of a step's response (:func:`walk_response`, or ``walked`` when the
    caller has it) and of its arguments."""
    if walked is None:
        walked = walk_response(step.response, info.resource if info else None)
    make = _new_tuple  # tuple.__new__ straight: Fact(...) runs a Python-level __new__ per fact
    facts = [make(Fact, (v, k, n, pn, p, order, place, ro, r, call)) for v, k, n, pn, p, ro, r in walked]
    for name, value in step.arguments.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            spec = info.arg(name) if info else None
            facts.append(Fact(value, name, norm(name), "", None, order, place,
                              spec.refers_to if spec else None, "args", call))
    return facts


class Facts:
    """Facts indexed by what may look them up."""

    def __init__(self) -> None:
        self.by_norm: dict[str, list[Fact]] = {}
        self.by_parent: dict[str, list[Fact]] = {}
        self.by_record: dict[str, list[Fact]] = {}
        self.deleted: set[tuple[str, str]] = set()

    def add(self, facts: list[Fact]) -> None:
        for f in facts:
            self.by_norm.setdefault(f.norm, []).append(f)
            if f.parent_norm:
                self.by_parent.setdefault(f.parent_norm, []).append(f)
            if f.record_of:
                self.by_record.setdefault(f.record_of, []).append(f)

    def copy(self) -> Facts:
        """An independent copy: adding to it leaves this one as it is."""
        other = Facts()
        other.by_norm = {k: v.copy() for k, v in self.by_norm.items()}
        other.by_parent = {k: v.copy() for k, v in self.by_parent.items()}
        other.by_record = {k: v.copy() for k, v in self.by_record.items()}
        other.deleted = set(self.deleted)
        return other

    def keys(self) -> set[str]:
        keys = {f"field:{k}" for k in self.by_norm} | {f"field:{k}" for k in self.by_parent}
        for res, facts in self.by_record.items():
            if any((res, str(f.value)) not in self.deleted for f in facts):
                keys.add(f"record:{res}")
        return keys

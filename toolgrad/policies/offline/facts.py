"""Facts: the scalar values a workflow has seen so far (in responses and in the arguments its
calls were given), indexed by what the offline policy looks them up by when it fills an
argument: the normalised key, the parent key + key, and the resource whose record holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from simulator.canonical import escape_token
from simulator.environments.resources import _WRAPPER_KEYS, Resource
from toolgrad.loop.policy import Workflow
from toolgrad.records import Step
from toolgrad.toolbox import ToolResult

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
Proto = tuple[Any, str, str, str, str, str | None, str]


class Walk:
    """The scalar values of one response, grouped by what looks them up (each group in
    document order); a pure function of the response and the tool's resource."""

    __slots__ = ("_under_key", "by_norm", "by_parent", "by_record", "protos")

    def __init__(self) -> None:
        self.protos: list[Proto] = []  # document order
        self.by_norm: dict[str, list[Proto]] = {}
        self.by_parent: dict[str, list[Proto]] = {}
        self.by_record: dict[str, list[Proto]] = {}
        self._under_key: dict[tuple[str, str | None], list[Proto]] = {}

    def of_record_under(self, resource: str, key: str | None) -> list[Proto]:
        """``by_record[resource]``'s values under ``key`` (a reference's id field), kept: every
        look-up that meets this response asks again."""
        found = self._under_key.get((resource, key))
        if found is None:
            found = self._under_key[(resource, key)] = [p for p in self.by_record.get(resource, ()) if p[1] == key]
        return found

    def _group(self, protos: list[Proto]) -> None:
        """Files ``protos`` (in order) under their look-up keys: one loop for a whole walk."""
        by_norm, by_parent, by_record = self.by_norm, self.by_parent, self.by_record
        for proto in protos:
            found = by_norm.get(proto[2])
            if found is None:
                by_norm[proto[2]] = [proto]
            else:
                found.append(proto)
            if proto[3]:
                by_parent.setdefault(proto[3], []).append(proto)
            if proto[5]:
                by_record.setdefault(proto[5], []).append(proto)


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


def walk_response(response: Any, res: Resource | None) -> Walk:
    """The scalar values of a response (a bounded walk: 4,000 nodes, depth 5, 25 items a
    list), each with where it sits; a pure function of the response and the tool's resource,
    so a policy may keep it for a response it meets again."""
    roots = _record_roots(response, res) if res else set()
    found = Walk()
    add = found.protos.append  # grouped once the walk is done
    budget = 4000
    res_name = res.name if res is not None else None

    # A container's children are walked in its loop (scalars, most of a body, without a call of
    # their own). A scalar directly in a record object is at record level; one in a list never is.
    def visit(node: Any, ptr: str, key: str, parent: str, record: str, depth: int) -> None:
        nonlocal budget
        if depth >= 5:  # its children would lie deeper than 5
            return
        if isinstance(node, dict):
            rec = ptr if ptr in roots else record
            at = res_name if rec == ptr else None  # rec == ptr: this object is a record root
            for k, v in node.items():
                if budget <= 0:
                    return
                budget -= 1
                ks = str(k)
                child = f"{ptr}/{escape_token(ks)}"
                if isinstance(v, (dict, list)):
                    visit(v, child, ks, key, rec, depth + 1)
                elif v is not None and not isinstance(v, bool):
                    add((v, ks, norm(ks), norm(key + ks) if key else "", child, at, rec))
        else:
            for i, v in enumerate(node[:25]):
                if budget <= 0:
                    return
                budget -= 1
                child = f"{ptr}/{i}"
                if isinstance(v, (dict, list)):
                    visit(v, child, key, parent, record, depth + 1)
                elif v is not None and not isinstance(v, bool):
                    add((v, key, norm(key), norm(parent + key) if parent else "", child, None, record))

    budget -= 1
    if isinstance(response, (dict, list)):
        visit(response, "", "", "", "-", 0)
    elif response is not None and not isinstance(response, bool):
        add((response, "", norm(""), "", "", None, "-"))
    found._group(found.protos)
    return found


@dataclass(frozen=True, slots=True)
class StepFacts:
    """One step's facts: its response's :class:`Walk`, stamped with the step's position only
    when looked up, and the values it was given (few, stamped already)."""

    walk: Walk
    order: int
    place: tuple[int, int] | None
    call: int | None
    given: tuple[Fact, ...]

    def with_norm(self, norm_key: str) -> list[Fact]:
        return self._stamped(self.walk.by_norm.get(norm_key, ())) + [f for f in self.given if f.norm == norm_key]

    def with_parent(self, parent_norm: str) -> list[Fact]:
        return self._stamped(self.walk.by_parent.get(parent_norm, ()))  # given values have no parent

    def of_record(self, resource: str) -> list[Fact]:
        return self._stamped(self.walk.by_record.get(resource, ())) + [
            f for f in self.given if f.record_of == resource]

    def record_ids(self, resource: str, id_field: str | None, norm_key: str) -> list[Fact]:
        """``of_record(resource)``'s facts under ``id_field``, and the values it was given under
        ``norm_key``: the few a reference to the resource takes, without stamping the rest."""
        return self._stamped(self.walk.of_record_under(resource, id_field)) + [
            f for f in self.given if f.record_of == resource and (f.key == id_field or f.norm == norm_key)]

    def lookup(self, kind: int, key: Any) -> list[Fact]:
        """:class:`Facts`' look-up ``kind`` (0: with_norm, 1: with_parent, 2: of_record, 3:
        record_ids) of ``key`` (record_ids': its arguments)."""
        if kind == 0:
            return self.with_norm(key)
        if kind == 1:
            return self.with_parent(key)
        if kind == 2:
            return self.of_record(key)
        return self.record_ids(*key)

    def norms(self) -> set[str]:
        return {*self.walk.by_norm, *(f.norm for f in self.given)}

    def records(self) -> set[str]:
        return {*self.walk.by_record, *(f.record_of for f in self.given if f.record_of)}

    def all(self) -> list[Fact]:
        """Every fact, in the order :func:`facts_of` lists them (document order, then given)."""
        return self._stamped(self.walk.protos) + list(self.given)

    def _stamped(self, protos: Any) -> list[Fact]:
        make, order, place, call = _new_tuple, self.order, self.place, self.call
        # tuple.__new__ straight: Fact(...) runs a Python-level __new__ per fact
        return [make(Fact, (v, k, n, pn, p, order, place, ro, r, call)) for v, k, n, pn, p, ro, r in protos]


def step_facts(
    step: Step, info: ToolInfo | None, order: int, place: tuple[int, int] | None, call: int | None = None,
    walk: Walk | None = None,
) -> StepFacts:
    """The scalar values of a step's response (:func:`walk_response`, or ``walk`` when the
    caller has it) and of its arguments."""
    if walk is None:
        walk = walk_response(step.response, info.resource if info else None)
    given = []
    for name, value in step.arguments.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            spec = info.arg(name) if info else None
            given.append(Fact(value, name, norm(name), "", None, order, place,
                              spec.refers_to if spec else None, "args", call))
    return StepFacts(walk, order, place, call, tuple(given))


def facts_of(
    step: Step, info: ToolInfo | None, order: int, place: tuple[int, int] | None, call: int | None = None,
) -> list[Fact]:
    """Every fact of a step (:meth:`StepFacts.all`)."""
    return step_facts(step, info, order, place, call).all()


class Facts:
    """The facts of a workflow's steps, looked up by normalised key, by parent + key, and by
    the resource whose record holds them; each list in the order the steps were added, a
    step's values in document order, then the values it was given."""

    def __init__(self) -> None:
        self.steps: list[StepFacts] = []
        self.deleted: set[tuple[str, str]] = set()
        # (kind, key) -> (steps covered, their facts): a step added extends an entry when next
        # asked; an entry's list is never changed in place (a copy shares it)
        self._memo: dict[tuple[int, Any], tuple[int, list[Fact]]] = {}
        # what this is a copy of, and how many steps they shared: a look-up of those steps is
        # asked of the original (and kept there, for its other copies: the executions of one
        # iteration each copy the workflow's facts)
        self._origin: Facts | None = None
        self._shared = 0

    def add(self, step: StepFacts) -> None:
        self.steps.append(step)

    def copy(self) -> Facts:
        """An independent copy: adding to it leaves this one as it is."""
        other = Facts()
        other.steps = list(self.steps)
        other.deleted = set(self.deleted)
        other._memo = dict(self._memo)
        other._origin, other._shared = self, len(self.steps)
        return other

    def with_norm(self, norm_key: str) -> list[Fact]:
        return self._lookup(0, norm_key)

    def with_parent(self, parent_norm: str) -> list[Fact]:
        return self._lookup(1, parent_norm)

    def of_record(self, resource: str) -> list[Fact]:
        return self._lookup(2, resource)

    def record_ids(self, resource: str, id_field: str | None, norm_key: str) -> list[Fact]:
        """What a reference to ``resource`` may take: ``[f for f in of_record(resource) if f.key
        == id_field or (f.record == "args" and f.norm == norm_key)]`` (a response's values are never
        "args"), each step's records filtered before their facts are made."""
        return self._lookup(3, (resource, id_field, norm_key))

    def _lookup(self, kind: int, key: Any) -> list[Fact]:
        covered, found = self._memo.get((kind, key), (0, []))
        origin = self._origin
        if covered < self._shared and origin is not None and len(origin.steps) == self._shared:
            found, covered = origin._lookup(kind, key), self._shared  # the original has added no step since
        if covered < len(self.steps):
            more: list[Fact] = []
            for step in self.steps[covered:]:
                more += step.lookup(kind, key)
            found = found + more if found else more
            self._memo[(kind, key)] = (len(self.steps), found)
        return found  # shared: callers only read it

    def keys(self) -> set[str]:
        norms: set[str] = set()
        records: set[str] = set()
        for step in self.steps:
            norms |= step.norms()
            norms.update(step.walk.by_parent)
            records |= step.records()
        keys = {f"field:{k}" for k in norms}
        for res in records:
            if any((res, str(f.value)) not in self.deleted for f in self.of_record(res)):
                keys.add(f"record:{res}")
        return keys


class SampleFacts:
    """The facts a policy keeps over one sample: each response walked once (a step placed in
    the workflow holds the very body its execution walked), each workflow step's facts made
    once, and the workflow's :class:`Facts` built again only when its steps change (propose and
    every execution of an iteration see the same workflow; an execution adds to a copy)."""

    def __init__(self, info: Callable[[str], ToolInfo | None]) -> None:
        self.info = info
        self._steps: dict[tuple[int, int, int, int], tuple[Step, StepFacts]] = {}
        self._workflow: tuple[list[tuple[int, int, Step]], Facts] | None = None
        self._walks: dict[tuple[int, str], tuple[Any, Walk]] = {}  # responses held: ids stay theirs

    def of_workflow(self, workflow: Workflow) -> Facts:
        """The workflow's facts, with the records its deletes removed; read only."""
        steps = workflow.steps()
        known = self._workflow
        if known is not None and len(known[0]) == len(steps) and all(
            a[2] is b[2] and a[:2] == b[:2] for a, b in zip(known[0], steps, strict=True)
        ):
            return known[1]
        facts = Facts()
        for order, (ci, si, step) in enumerate(steps):
            key = (id(step), order, ci, si)
            hit = self._steps.get(key)
            info = self.info(step.tool)
            if hit is None or hit[0] is not step:
                made = step_facts(step, info, order, (ci, si), walk=self.walk(step.response, info))
                hit = self._steps[key] = (step, made)
            facts.add(hit[1])
            if info and info.kind == "delete" and info.resource and info.address and (
                info.address.name in step.arguments
            ):
                facts.deleted.add((info.resource.name, str(step.arguments[info.address.name])))
        self._workflow = (steps, facts)
        return facts

    def walk(self, response: Any, info: ToolInfo | None) -> Walk:
        """:func:`walk_response`, once per response."""
        key = (id(response), info.name if info else "")
        hit = self._walks.get(key)
        if hit is None or hit[0] is not response:
            hit = self._walks[key] = (response, walk_response(response, info.resource if info else None))
        return hit[1]

    def of_call(self, result: ToolResult, info: ToolInfo, index: int, order: int) -> StepFacts:
        """The facts of a running execution's ``index``-th call, for the calls after it."""
        step = Step(env=info.env, tool=result.tool, operation_id=info.name, arguments=result.arguments,
                    status=result.status, response=result.body, state_hash=result.state_hash)
        return step_facts(step, info, order + index, None, index, walk=self.walk(result.body, info))

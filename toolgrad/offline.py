"""OfflinePolicy: the four ToolGrad modules as a deterministic algorithm, no model needed.

What it is: a schema-driven planner that builds chains in which earlier outputs feed later
inputs, run for real against the (simulated) services.

* **Propose.** Each tool is analysed once from its spec: what it does to which resource
  (:func:`simulator.resources.infer_resources`: list, create, read, update, delete, action),
  which argument addresses an existing record (``petId`` of ``GET /pet/{petId}``, or the id
  field of a ``PUT /pet`` body), which arguments name other records (``petId`` in an order),
  and which fields its success response carries. A tool is callable when its addressing
  argument can be fed from a record already seen, or takes few enough values to guess (an
  enum, a small integer range): a guessed id of a writable resource would be a 404. Proposals
  are sequences of up to three tools in which each later tool consumes something an earlier
  one produces, scored by: tools new to the workflow, arguments fed from outputs already in
  the workflow or from the proposal's earlier calls, writes over reads. The ``k`` best with
  distinct first tools are proposed; ties break on ``sha256(seed, iteration, tool)``.
* **Execute.** Arguments are filled in order: from earlier outputs by name and type (``petId``
  <- the ``id`` of a pet record, ``username`` <- ``username``, ``dashboard_id`` <- a dashboard's
  ``id``; several arguments prefer the same record; deleted records are skipped), then required
  ones from the schema: enum members, examples and defaults, or
  :func:`simulator.datagen.generate_value` seeded by (seed, iteration, tool, argument). When a
  value comes from a step already in the workflow, its source (chain, step, JSON pointer) is
  declared. The agent stops at the first failed call (the validator fails it anyway).
* **Select.** The successful execution that extends the workflow most: new tools, arguments
  fed from earlier outputs, writes, length; repeats of earlier calls count against, and a
  candidate that only repeats is rejected. It extends the chain it consumes from, else starts
  a new one, and the rationale says why, with the other candidates' scores.
* **Update.** Query and answer from templates over all chains: each step's summary (or the
  first sentence of its description) as an imperative clause, the values the user must supply
  quoted, values taken from earlier results referred to as such; the answer cites key fields
  (ids, names, statuses, counts) of the real responses. Tool and operation names never appear.

What it is not: it does not read descriptions for meaning, plan towards a goal, or write
varied prose: queries are templated and read like it ("First, find Pets by status with status
'sold'. Then, ..."). Sample length is drawn per seed between 3 and 6 calls
(``target_calls`` fixes it). It exists so the pipeline, its tests and the quick start run with
no model, and as a floor to compare model-generated data with.
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from simulator.datagen import generate_value
from simulator.model import JSONSchema, Operation
from simulator.resources import _WRAPPER_KEYS, Resource, ResourceModel, infer_resources, success_schema
from simulator.schemas import array_items, deref, object_properties, primary_type

from .loop import THIS_EXECUTION, escape_pointer_token, failure_reason
from .policy import CallFn, Context, ExecutedCall, StageError, Workflow
from .records import Cost, Proposal, Selection, Step
from .sampling import stable_hash, stable_int, stable_ranks
from .toolbox import BoundTool, Toolbox

MIN_CALLS, MAX_CALLS = 3, 6
_GUESSABLE_RANGE = 100
_KEY_FIELDS = ("id", "key", "uuid", "name", "username", "title", "slug", "status", "state", "email",
               "type", "total", "count", "quantity")
_VERBS = {
    "returns": "get", "return": "get", "provides": "get", "provide": "get", "gets": "get", "retrieves": "retrieve",
    "finds": "find", "lists": "list", "creates": "create", "updates": "update", "deletes": "delete",
    "adds": "add", "places": "place", "logs": "log", "uploads": "upload", "sends": "send", "sets": "set",
    "replaces": "replace", "removes": "remove", "searches": "search", "fetches": "fetch", "buys": "buy",
    "merges": "merge", "performs": "perform", "destroys": "delete",
}
_IMPERATIVES = frozenset({
    "get", "list", "find", "create", "update", "delete", "add", "place", "log", "upload", "send", "set",
    "replace", "remove", "search", "fetch", "buy", "merge", "perform", "retrieve", "check", "show", "make",
    "post", "put", "register", "start", "stop", "cancel", "run", "change", "edit", "look",
})
_ADDRESSED = ("read", "replace", "update", "delete")


# -- names and phrases --------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _words(name: str) -> str:
    """``petId`` -> "pet ID", ``feed_key`` -> "feed key"."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ")
    parts = [("ID" if p.lower() == "id" else p.lower()) for p in text.split()]
    return " ".join(parts) or name


def _id_like(name: str) -> bool:
    """An argument that names something (``petId``, ``feed_key``, ``username``), as opposed to a
    free value (``status``, ``quantity``, ``lastName``)."""
    n = _norm(name)
    return n.endswith(("id", "key", "uuid", "slug", "code", "token", "username")) or n in ("login", "handle")


def _phrase(op: Operation, kind: str, resource: Resource | None) -> str:
    """An imperative clause for what the operation does: "find Pets by status"."""
    text = op.summary or (op.description.split(". ")[0] if op.description else "")
    text = " ".join(text.replace("\n", " ").split()).rstrip(". ")
    if not text:
        noun = _words(re.sub(r"_\d+$", "", resource.name)) if resource else _words(op.operation_id)
        text = {"list": f"list {noun} records", "create": f"create a {noun}", "read": f"get the {noun}",
                "replace": f"replace the {noun}", "update": f"update the {noun}",
                "delete": f"delete the {noun}"}.get(kind, _words(op.operation_id))
    words = text.split()
    first = _VERBS.get(words[0].lower(), words[0].lower())
    if first not in _IMPERATIVES:
        return " ".join(["get", _lower_first(words[0]), *words[1:]])[:160]
    return " ".join([first, *words[1:]])[:160]


def _lower_first(word: str) -> str:
    return word if word.isupper() and len(word) > 1 else word.lower()


def _guessable(schema: JSONSchema) -> bool:
    """Few enough values that any of them names something: an enum, a small integer range."""
    node = deref(schema, schema)
    if isinstance(node.get("enum"), list) or node.get("type") == "boolean":
        return True
    low, high = node.get("minimum"), node.get("maximum")
    return node.get("type") == "integer" and isinstance(low, int) and isinstance(high, int) and (
        high - low <= _GUESSABLE_RANGE)


# -- what each tool is, from its spec ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArgSpec:
    name: str
    location: str  # path, query, header, cookie, body-field, body
    required: bool
    schema: JSONSchema  # self-contained
    norm: str
    feedable: bool  # takes earlier outputs
    refers_to: str | None = None  # resource whose record's id this argument takes
    id_field: str | None = None  # that resource's id field
    keys: tuple[str, ...] = ()  # planning keys that would feed it (empty when not feedable)


@dataclass(frozen=True, slots=True, eq=False)
class ToolInfo:
    name: str
    env: str
    kind: str
    resource: Resource | None
    phrase: str  # imperative clause, e.g. "find pet by ID"
    args: tuple[ArgSpec, ...]
    address: ArgSpec | None  # the argument naming an existing record
    must_feed: bool  # the address names a record of a writable resource: a guess would be a 404
    produces: frozenset[str]  # planning keys: "record:<resource>", "field:<name>"
    writes: bool
    has_body: bool  # its success response documents a body
    body_schema: JSONSchema | None = None
    body_required: bool = False
    feed_keys: frozenset[str] = frozenset()  # every planning key that feeds some argument

    def arg(self, name: str) -> ArgSpec | None:
        return next((a for a in self.args if a.name == name), None)

    def fed_by(self, keys: set[str] | frozenset[str]) -> int:
        """How many of its arguments values with these planning keys would feed."""
        if self.feed_keys.isdisjoint(keys):
            return 0
        return sum(1 for a in self.args if a.keys and not keys.isdisjoint(a.keys))

    def callable_with(self, keys: set[str] | frozenset[str]) -> bool:
        return not self.must_feed or (self.resource is not None and f"record:{self.resource.name}" in keys)


_MODELS: dict[tuple[str, str], ResourceModel] = {}
_CATALOG: weakref.WeakKeyDictionary[Toolbox, dict[str, ToolInfo]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def resource_model(toolbox: Toolbox, env_name: str) -> ResourceModel:
    env = toolbox.environments[env_name]
    key = (env.spec.sha256, stable_hash(env.overrides))
    with _LOCK:
        model = _MODELS.get(key)
    if model is None:
        model = infer_resources(env.spec, env.overrides)
        with _LOCK:
            _MODELS[key] = model
    return model


def tool_info(toolbox: Toolbox, name: str) -> ToolInfo:
    """What a tool does, analysed once per toolbox and memoised."""
    with _LOCK:
        known = _CATALOG.setdefault(toolbox, {})
        hit = known.get(name)
    if hit is not None:
        return hit
    bound = toolbox.tools[name]
    op = toolbox.environments[bound.env].spec.operation(bound.tool.operation_id)
    info = _analyse(bound, op, resource_model(toolbox, bound.env))
    with _LOCK:
        known[name] = info
    return info


def _field_keys(schema: JSONSchema | None, limit: int = 3) -> set[str]:
    """Planning keys for the property names in a response schema (a few levels deep)."""
    keys: set[str] = set()
    if not schema:
        return keys

    def walk(node: Any, parent: str, depth: int) -> None:
        if depth > limit or not isinstance(node, dict):
            return
        items = array_items(schema, node)
        if items is not None:
            walk(items, parent, depth + 1)
            return
        for prop, sub in object_properties(schema, node).items():
            keys.add(f"field:{_norm(prop)}")
            if parent:
                keys.add(f"field:{_norm(parent + prop)}")
            walk(sub, prop, depth + 1)

    walk(schema, "", 0)
    return keys


def _referent(model: ResourceModel, argument: str) -> Resource | None:
    """The resource an argument like ``petId``, ``dashboard_id`` or ``feed_key`` refers to."""
    n = _norm(argument)
    for suffix in ("id", "key", "uuid", "slug"):
        if n.endswith(suffix) and len(n) > len(suffix):
            stem = n[: -len(suffix)]
            for res in model.resources.values():
                if _norm(res.name) == stem:
                    return res
    return None


def _analyse(bound: BoundTool, op: Operation, model: ResourceModel) -> ToolInfo:
    binding = model.bindings.get(op.operation_id)
    kind = binding.kind if binding else "action"
    res = model.resources.get(binding.resource) if binding and binding.resource else None
    params = {p.name: p for p in op.parameters}
    body_schema = op.request_body.content.get(bound.tool.media_type) if (
        op.request_body is not None and bound.tool.media_type) else None
    required = set(bound.tool.parameters.get("required", []))
    address_name = None
    if res is not None and kind in _ADDRESSED:
        names = {b.argument for b in bound.tool.bindings}
        address_name = res.id_param if res.id_param in names else (res.id_field if res.id_field in names else None)
    args: list[ArgSpec] = []
    for b in bound.tool.bindings:
        if b.location in ("path", "query", "header", "cookie") and b.name in params:
            schema = params[b.name].schema
        elif b.location == "body-field" and body_schema is not None:
            sub = object_properties(body_schema, body_schema).get(b.name, {})
            schema = {**sub, "$defs": body_schema["$defs"]} if "$defs" in body_schema else sub
        elif body_schema is not None:
            schema = body_schema
        else:
            schema = bound.tool.parameters["properties"].get(b.argument, {})
        referent = res if b.argument == address_name else _referent(model, b.argument)
        own = res is not None and referent is not None and referent.name == res.name
        if b.argument == address_name:
            feedable = True
        elif kind in ("create", "replace", "update") and b.location in ("body-field", "body"):
            # a new or changed record's own fields are values to choose, except references to others
            feedable = referent is not None and not own
        else:
            feedable = referent is not None or _id_like(b.argument)
        keys = ((f"field:{_norm(b.argument)}",) + ((f"record:{referent.name}",) if referent else ())) if feedable else ()
        args.append(ArgSpec(
            b.argument, b.location, b.argument in required or b.location == "path", schema, _norm(b.argument),
            feedable, referent.name if referent else None, referent.id_field if referent else None, keys))
    address = next((a for a in args if a.name == address_name), None)
    must_feed = address is not None and res is not None and res.writable and not _guessable(address.schema)
    response = success_schema(op)
    produces = _field_keys(response)
    if res is not None and kind in ("list", "create", "read", "replace", "update") and response:
        produces.add(f"record:{res.name}")
    return ToolInfo(bound.name, bound.env, kind, res, _phrase(op, kind, res), tuple(args), address, must_feed,
                    frozenset(produces), op.method not in ("GET", "HEAD", "OPTIONS"), bool(response), body_schema,
                    op.request_body is not None and op.request_body.required,
                    frozenset(k for a in args for k in a.keys))


# -- facts: values seen so far -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fact:
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


def _record_roots(body: Any, res: Resource | None) -> set[str]:
    roots: list[tuple[str, Any]] = []
    if isinstance(body, list):
        roots = [(f"/{i}", item) for i, item in enumerate(body)]
    elif isinstance(body, dict):
        roots = [("", body)]
        for key in (*_WRAPPER_KEYS, "item", "result", res.name if res else ""):
            inner = body.get(key) if key else None
            if isinstance(inner, dict):
                roots.append((f"/{escape_pointer_token(key)}", inner))
            elif isinstance(inner, list):
                roots += [(f"/{escape_pointer_token(key)}/{i}", x) for i, x in enumerate(inner)]
    return {p for p, r in roots if isinstance(r, dict)}


def facts_of(step: Step, info: ToolInfo | None, order: int, place: tuple[int, int] | None,
             call: int | None = None) -> list[Fact]:
    """The scalar values of a step's response (a bounded walk) and of its arguments."""
    res = info.resource if info else None
    roots = _record_roots(step.response, res) if res else set()
    facts: list[Fact] = []
    budget = [4000]

    def walk(node: Any, ptr: str, key: str, parent: str, record: str, depth: int) -> None:
        if budget[0] <= 0 or depth > 5:
            return
        budget[0] -= 1
        if isinstance(node, dict):
            rec = ptr if ptr in roots else record
            for k, v in node.items():
                walk(v, f"{ptr}/{escape_pointer_token(str(k))}", str(k), key, rec, depth + 1)
        elif isinstance(node, list):
            for i, v in enumerate(node[:25]):
                walk(v, f"{ptr}/{i}", key, parent, record, depth + 1)
        elif node is not None and not isinstance(node, bool):
            at_record = res is not None and record != "-" and ptr == f"{record}/{escape_pointer_token(key)}"
            facts.append(Fact(node, key, _norm(key), _norm(parent + key) if parent else "", ptr, order, place,
                              res.name if (at_record and res) else None, record, call))

    walk(step.response, "", "", "", "-", 0)
    for name, value in step.arguments.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            spec = info.arg(name) if info else None
            facts.append(Fact(value, name, _norm(name), "", None, order, place, spec.refers_to if spec else None,
                              "args", call))
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

    def keys(self) -> set[str]:
        keys = {f"field:{k}" for k in self.by_norm} | {f"field:{k}" for k in self.by_parent}
        for res, facts in self.by_record.items():
            if any((res, str(f.value)) not in self.deleted for f in facts):
                keys.add(f"record:{res}")
        return keys


# -- the policy -----------------------------------------------------------------------------------


class OfflinePolicy:
    """A deterministic :class:`~toolgrad.policy.Policy`; make one per sample (it is cheap)."""

    name = "offline"

    def __init__(self, toolbox: Toolbox, *, target_calls: int | None = None) -> None:
        self.toolbox = toolbox
        self.target_calls = target_calls
        self._step_facts: dict[tuple[int, int, int, int], tuple[Step, list[Fact]]] = {}
        self._failures: dict[str, int] = {}  # tool -> calls the validator failed in this sample

    def cost(self) -> Cost:
        return Cost()

    def cache_keys(self) -> list[str]:
        return []

    def info(self, name: str) -> ToolInfo | None:
        return tool_info(self.toolbox, name) if name in self.toolbox.tools else None

    def target(self, seed: int) -> int:
        if self.target_calls is not None:
            return self.target_calls
        return MIN_CALLS + stable_int("offline-target", seed) % (MAX_CALLS - MIN_CALLS + 1)

    def _facts(self, workflow: Workflow) -> Facts:
        facts = Facts()
        for order, (ci, si, step) in enumerate(workflow.steps()):
            key = (id(step), order, ci, si)
            hit = self._step_facts.get(key)
            if hit is None or hit[0] is not step:
                hit = self._step_facts[key] = (step, facts_of(step, self.info(step.tool), order, (ci, si)))
            facts.add(hit[1])
            info = self.info(step.tool)
            if info and info.kind == "delete" and info.resource and info.address and (
                    info.address.name in step.arguments):
                facts.deleted.add((info.resource.name, str(step.arguments[info.address.name])))
        return facts

    # -- propose --------------------------------------------------------------------------------

    def propose(self, ctx: Context) -> list[Proposal]:
        done = len(ctx.workflow.steps())
        room = min(self.target(ctx.seed) - done, ctx.max_agent_steps, 3)
        if room <= 0:
            raise StageError("propose", f"the workflow is complete ({done} calls)")
        keys0 = frozenset(self._facts(ctx.workflow).keys())
        used = {s.tool for _, _, s in ctx.workflow.steps()}
        infos = [i for i in (self.info(b.name) for b in ctx.batch) if i is not None]
        rank = stable_ranks([i.name for i in infos], ctx.seed, ctx.iteration)
        base = {i.name: self._score(i, keys0, frozenset(), used) for i in infos}
        plans: list[tuple[float, str, list[ToolInfo]]] = []
        for first in infos:
            if not first.callable_with(keys0):
                continue
            tools, score = [first], base[first.name]
            keys = set(keys0 | first.produces)
            while len(tools) < room and tools[-1].kind != "delete":
                in_plan = frozenset().union(*(t.produces for t in tools))
                produced = in_plan - keys0
                best: tuple[float, str, ToolInfo] | None = None
                for nxt in infos:
                    if any(nxt is t for t in tools) or not nxt.callable_with(keys):
                        continue
                    consumes = nxt.fed_by(produced) or (
                        nxt.resource is not None and nxt.address is not None
                        and f"record:{nxt.resource.name}" in in_plan)
                    if not consumes:
                        continue  # a later tool must consume what the earlier ones produce
                    candidate = (base[nxt.name] + 1.5 * nxt.fed_by(produced), rank[nxt.name], nxt)
                    if candidate[0] <= 0:
                        continue  # not worth risking the proposal for
                    if best is None or candidate[:2] > best[:2]:
                        best = candidate
                if best is None:
                    break
                tools.append(best[2])
                score += best[0]
                keys |= best[2].produces
            plans.append((score, stable_hash(ctx.seed, ctx.iteration, [t.name for t in tools]), tools))
        if not plans:
            raise StageError("propose", "no tool in the batch can be called with what the workflow knows")
        plans.sort(key=lambda p: (-p[0], p[1]))
        chosen: list[list[ToolInfo]] = []
        for _, _, tools in plans:  # distinct first tools
            if all(tools[0] is not c[0] for c in chosen):
                chosen.append(tools)
            if len(chosen) == ctx.k:
                break
        return [Proposal(instruction=_instruction(tools), tools=[t.name for t in tools]) for tools in chosen]

    def _score(self, info: ToolInfo, keys0: frozenset[str], produced: frozenset[str], used: set[str]) -> float:
        score = 3.0 if info.name not in used else -1.0
        score -= 3.0 * self._failures.get(info.name, 0)  # what failed in this sample is avoided
        score += 2.0 * info.fed_by(keys0) + 1.5 * (info.fed_by(produced) if produced else 0)
        score += 1.0 if info.writes else 0.0
        score += 0.5 if info.kind in ("list", "read", "create") else 0.0
        if not info.has_body:
            score -= 2.0  # documents no body: the validator would call it empty
        if info.kind == "delete":
            score -= 1.0  # ends what it touches
        return score

    # -- execute --------------------------------------------------------------------------------

    def execute(self, ctx: Context, proposal: Proposal, call: CallFn) -> list[ExecutedCall]:
        facts = self._facts(ctx.workflow)
        order = len(ctx.workflow.steps())
        out: list[ExecutedCall] = []
        for index, name in enumerate(proposal.tools[: ctx.max_agent_steps]):
            info = self.info(name)
            if info is None:
                raise StageError("execute", f"unknown tool {name!r}")
            salt = (ctx.seed, ctx.iteration, proposal.tools, index)
            arguments, sources = self._fill(info, facts, salt)
            result = call(name, arguments)
            out.append(ExecutedCall(result, sources))
            if failure_reason(result):
                self._failures[name] = self._failures.get(name, 0) + 1
                break
            step = Step(env=info.env, tool=name, operation_id=info.name, arguments=result.arguments,
                        status=result.status, response=result.body, state_hash=result.state_hash)
            facts.add(facts_of(step, info, order + index, None, index))
            if info.kind == "delete" and info.resource and info.address and info.address.name in arguments:
                facts.deleted.add((info.resource.name, str(arguments[info.address.name])))
        return out

    def _fill(self, info: ToolInfo, facts: Facts,
              salt: tuple[Any, ...]) -> tuple[dict[str, Any], dict[str, tuple[int, int, str]]]:
        arguments: dict[str, Any] = {}
        sources: dict[str, tuple[int, int, str]] = {}
        anchor: tuple[int, str] | None = None
        # the addressing argument first, then references: later ones prefer the same record
        for arg in sorted(info.args, key=lambda a: (a is not info.address, a.refers_to is None, a.name)):
            fact = self._match(arg, facts, anchor, salt) if arg.feedable else None
            if fact is not None:
                arguments[arg.name] = _coerce(fact.value, arg.schema)
                if fact.pointer is not None and fact.place is not None:
                    sources[arg.name] = (fact.place[0], fact.place[1], fact.pointer)
                elif fact.pointer is not None and fact.call is not None:
                    sources[arg.name] = (THIS_EXECUTION, fact.call, fact.pointer)
                if anchor is None and fact.record not in ("-", "args"):
                    anchor = (fact.order, fact.record)
                continue
            if arg is info.address and info.must_feed:
                raise StageError("execute", f"{info.name}: no known {info.resource.name if info.resource else ''} "
                                            f"record to address with {arg.name!r}")
            if arg.required:
                arguments[arg.name] = _plausible(arg, salt)
        if info.body_schema is not None and (info.body_required or info.kind in ("create", "replace", "update")):
            self._fill_body(info, arguments, salt)
        return {a.name: arguments[a.name] for a in info.args if a.name in arguments}, sources

    @staticmethod
    def _fill_body(info: ToolInfo, arguments: dict[str, Any], salt: tuple[Any, ...]) -> None:
        """Two more body fields for a write (a change worth making; scalars first, never the new
        record's own id or a read-only field); a whole generated body when the body is required
        and nothing filled it yet."""
        fields = [a for a in info.args if a.location == "body-field"]
        if not fields:
            return
        if info.body_required and not any(a.name in arguments for a in fields):
            body = _generate(info.body_schema or {}, (*salt, "body"), info.resource.name if info.resource else None)
            if isinstance(body, dict):
                arguments.update({a.name: body[a.name] for a in fields if a.name in body})
            return
        own_id = info.resource.id_field if info.resource and info.kind == "create" else None
        extra = [a for a in fields if a.name not in arguments and a.name != own_id
                 and not deref(a.schema, a.schema).get("readOnly")]
        extra.sort(key=lambda a: (primary_type(a.schema, deref(a.schema, a.schema)) in ("object", "array"),
                                  stable_hash(*salt, a.name)))
        for a in extra[:2]:
            value = _generate(a.schema, (*salt, a.name), a.name)
            if value is not None:
                arguments[a.name] = value

    @staticmethod
    def _match(arg: ArgSpec, facts: Facts, anchor: tuple[int, str] | None, salt: tuple[Any, ...]) -> Fact | None:
        tiers: list[tuple[int, list[Fact]]] = []
        if arg.refers_to:
            tiers.append((100, [f for f in facts.by_record.get(arg.refers_to, ())
                                if f.key == arg.id_field or (f.record == "args" and f.norm == arg.norm)]))
            tiers.append((99, [f for f in facts.by_norm.get(arg.norm, ())
                               if f.record == "args" and f.record_of == arg.refers_to]))
        tiers.append((90, facts.by_parent.get(arg.norm, [])))
        tiers.append((85, [f for f in facts.by_norm.get(arg.norm, ()) if f.record_of]))
        tiers.append((80, facts.by_norm.get(arg.norm, [])))
        for _, candidates in tiers:
            pool = [f for f in candidates if _fits(f.value, arg.schema)
                    and not (arg.refers_to and (arg.refers_to, str(f.value)) in facts.deleted)]
            if not pool:
                continue
            latest = max(f.order for f in pool)
            pool = [f for f in pool if f.order == latest]
            if anchor is not None:
                pool = [f for f in pool if (f.order, f.record) == anchor] or pool
            values: dict[str, Fact] = {}
            for f in pool:
                values.setdefault(stable_hash(f.value), f)
            ranked = [values[k] for k in sorted(values)]
            return ranked[stable_int(*salt, arg.name) % len(ranked)]
        return None

    # -- select ---------------------------------------------------------------------------------

    def select(self, ctx: Context, candidates: list[tuple[int, list[Step]]]) -> Selection:
        existing = {(s.tool, stable_hash(s.arguments)) for _, _, s in ctx.workflow.steps()}
        used = {s.tool for _, _, s in ctx.workflow.steps()}
        n = len(ctx.workflow.chains)
        scored: list[tuple[float, int, list[Step], str]] = []
        for proposal, steps in candidates:
            new_tools = len({s.tool for s in steps} - used)
            feeds_old = sum(1 for s in steps for src in s.sources.values() if src.chain < n)
            feeds_new = sum(1 for s in steps for src in s.sources.values() if src.chain >= n)
            writes = sum(1 for s in steps if (i := self.info(s.tool)) is not None and i.writes)
            repeats = sum(1 for s in steps if (s.tool, stable_hash(s.arguments)) in existing)
            score = 3 * new_tools + 2.5 * feeds_old + 1.5 * feeds_new + writes + 0.5 * len(steps) - 5 * repeats
            why = (f"{new_tools} new tool(s), {feeds_old} argument(s) fed from earlier outputs, "
                   f"{feeds_new} fed within the proposal, {writes} write(s), {len(steps)} call(s)")
            if repeats:
                why += f", {repeats} repeated call(s)"
            scored.append((score, proposal, steps, why))
        scored.sort(key=lambda x: (-x[0], x[1]))
        score, proposal, steps, why = scored[0]
        if score <= 0:
            return Selection(proposal=None, action="reject",
                             rationale=f"Every candidate only repeats the workflow (best: proposal {proposal}: {why}).")
        rationale = f"Proposal {proposal} extends the workflow most: {why} (score {score:g})."
        others = "; ".join(f"proposal {p}: {w} (score {s:g})" for s, p, _, w in scored[1:])
        if others:
            rationale += f" Others: {others}."
        fed_from = sorted({src.chain for s in steps for src in s.sources.values() if src.chain < n})
        if fed_from:
            rationale += f" It consumes the output of chain {fed_from[-1]}, so it extends that chain."
            return Selection(proposal=proposal, action="extend", chain=fed_from[-1], rationale=rationale)
        rationale += " It needs nothing from the existing chains, so it starts a new one."
        return Selection(proposal=proposal, action="new", rationale=rationale)

    # -- update ---------------------------------------------------------------------------------

    def update(self, ctx: Context, selection: Selection, workflow: Workflow) -> tuple[str, str]:
        paragraphs, findings, asks = [], [], []
        for ci, chain in enumerate(workflow.chains):
            clauses = []
            for si, step in enumerate(chain.steps):
                info = self.info(step.tool)
                clauses.append(_clause(step, info, ci, si))
                findings.append(_finding(step, info))
            paragraphs.append(_sequence(clauses, also=ci > 0))
            ask = _ask(chain.steps[-1], self.info(chain.steps[-1].tool))
            if ask not in asks:
                asks.append(ask)
        query = " ".join(paragraphs) + f" Tell me {_join(asks)}."
        return query, " ".join(findings)


# -- text ---------------------------------------------------------------------------------------


def _instruction(tools: list[ToolInfo]) -> str:
    parts = [tools[0].phrase] + [f"then {t.phrase} using what the previous call returned" for t in tools[1:]]
    text = ", ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _arg_words(name: str, info: ToolInfo | None) -> str:
    spec = info.arg(name) if info else None
    if spec is not None and spec.location == "header":
        name = re.sub(r"(?i)^x-", "", name)  # x-apideck-app-id -> "apideck app ID"
    return _words(name)


def _clause(step: Step, info: ToolInfo | None, chain: int, index: int) -> str:
    clause = info.phrase if info else "make the request"
    said = [f"{_arg_words(k, info)} {text}" for k, v in step.arguments.items()
            if k not in step.sources and (text := _say(v)) is not None][:4]
    if said:
        clause += " with " + _join(said)
    if step.sources:
        refs = []
        for name, src in sorted(step.sources.items())[:3]:
            where = "the previous result" if (src.chain == chain and src.step == index - 1) else "earlier"
            item = _ordinal_item(src.pointer)
            refs.append(f"the {_arg_words(name, info)} {f'of {item} ' if item else ''}from {where}")
        clause += (", using " if said else " using ") + _join(refs)
    return clause


def _ordinal_item(pointer: str) -> str:
    """"the 2nd item" when a pointer goes through a list (which record was meant)."""
    index = next((int(t) for t in pointer.split("/")[1:] if t.isdigit()), None)
    if index is None:
        return ""
    n = index + 1
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"the {n}{suffix} item"


def _sequence(clauses: list[str], *, also: bool) -> str:
    if len(clauses) == 1:
        return f"Also, {clauses[0]}." if also else f"{clauses[0][:1].upper()}{clauses[0][1:]}."
    parts = [f"{'Separately, first' if also else 'First'}, {clauses[0]}."]
    parts += [f"Then, {c}." for c in clauses[1:-1]]
    parts.append(f"Finally, {clauses[-1]}.")
    return " ".join(parts)


def _noun(info: ToolInfo | None) -> str:
    return _words(re.sub(r"_\d+$", "", info.resource.name)) if info and info.resource else "result"


def _plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")


def _ask(step: Step, info: ToolInfo | None) -> str:
    body = step.response
    if isinstance(body, list) or (isinstance(body, dict) and _listing(body) is not None):
        return f"how many {_plural(_noun(info))} there are"
    if isinstance(body, dict):
        target = _unwrap(body)
        names = [k for k in _cited_keys(target, 3)]
        if names:
            return f"the {_noun(info)}'s {_join([_words(k) for k in names])}"
    return "what you find"


def _finding(step: Step, info: ToolInfo | None) -> str:
    phrase = info.phrase if info else "the request"
    lead = phrase[:1].upper() + phrase[1:]
    body = step.response
    items = body if isinstance(body, list) else _listing(body) if isinstance(body, dict) else None
    if items is not None:
        cited = [c for c in (_cite(x, 2) for x in items[:3]) if c]
        return f"{lead}: {len(items)} result(s)" + (f", including {'; '.join(cited)}." if cited else ".")
    said = _cite(body, 4) if isinstance(body, dict) else _say(body)
    return f"{lead}: {said}." if said else f"{lead}: done."


def _unwrap(record: dict[str, Any]) -> dict[str, Any]:
    for key in ("data", "item", "result"):
        inner = record.get(key)
        if isinstance(inner, dict) and not any(k in record for k in ("id", "name")):
            return inner
    return record


def _cited_keys(record: dict[str, Any], limit: int) -> list[str]:
    """Up to ``limit`` keys worth citing: an id first, then names, statuses, counts."""
    sayable = [k for k, v in record.items() if _say(v) is not None]
    picked = [k for k in sayable if _norm(k) == "id"] or [k for k in sayable if _norm(k).endswith("id")][:1]
    for wanted in _KEY_FIELDS:
        for k in sayable:
            if len(picked) < limit and _norm(k) == wanted and k not in picked:
                picked.append(k)
    return picked or sayable[: min(limit, 2)]


def _cite(record: Any, limit: int) -> str:
    """Key fields of a record: "ID 4, name 'doggie', status 'available'"."""
    if not isinstance(record, dict):
        return _say(record) or ""
    target = _unwrap(record)
    return ", ".join(f"{_words(k)} {_say(target[k])}" for k in _cited_keys(target, limit))


def _listing(body: dict[str, Any]) -> list[Any] | None:
    for key in _WRAPPER_KEYS:
        if isinstance(body.get(key), list):
            return list(body[key])
    return None


def _say(value: Any) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        text = " ".join(value.split())
        return f"'{text}'" if text and len(text) <= 60 else None
    if isinstance(value, list) and value and len(value) <= 3 and all(isinstance(v, (str, int, float)) for v in value):
        parts = [s for s in (_say(v) for v in value) if s]
        return _join(parts) if len(parts) == len(value) else None
    return None


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# -- values ---------------------------------------------------------------------------------------


def _fits(value: Any, schema: JSONSchema) -> bool:
    node = deref(schema, schema)
    enum = node.get("enum")
    if isinstance(enum, list) and value not in enum and str(value) not in [str(e) for e in enum]:
        return False
    kind = primary_type(schema, node) or "string"
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and value.lstrip("-").isdigit())
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, (str, int)) and not isinstance(value, bool)
    return kind not in ("object", "array", "boolean")


def _coerce(value: Any, schema: JSONSchema) -> Any:
    kind = primary_type(schema, deref(schema, schema)) or "string"
    if kind == "integer" and isinstance(value, str):
        return int(value)
    if kind == "string" and isinstance(value, int):
        return str(value)
    return value


def _generate(schema: JSONSchema, salt: tuple[Any, ...], name: str | None) -> Any:
    try:
        return generate_value(schema, stable_hash("offline", *salt), name=name)
    except ValueError:
        return None


def _plausible(arg: ArgSpec, salt: tuple[Any, ...]) -> Any:
    node = deref(arg.schema, arg.schema)
    pick = stable_int(*salt, arg.name)
    enum = node.get("enum")
    if isinstance(enum, list) and enum:
        return enum[pick % len(enum)]
    low, high = node.get("minimum"), node.get("maximum")
    if node.get("type") == "integer" and isinstance(low, int) and isinstance(high, int) and high >= low:
        return low + pick % (high - low + 1)
    for key in ("default", "example"):
        if key in node:
            return node[key]
    examples = node.get("examples")
    if isinstance(examples, list) and examples:
        return examples[pick % len(examples)]
    value = _generate(arg.schema, (*salt, arg.name), arg.name)
    return value if value is not None else ("" if primary_type(arg.schema, node) == "string" else 1)

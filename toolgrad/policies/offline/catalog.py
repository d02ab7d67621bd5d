"""What each tool is, from its spec: what it does to which resource, which argument addresses
an existing record, which arguments name other records, and which planning keys it produces
and consumes (``record:<resource>``, ``field:<name>``).

What a caller may rely on: :func:`tool_info` analyses a tool once per toolbox (memoised, thread
safe) and the result depends only on the spec and the environment's overrides.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from simulator.datagen.names import is_person_field, member_name
from simulator.environments.resources import Resource, ResourceModel, infer_resources, success_schema
from simulator.spec.model import JSONSchema, Operation
from simulator.spec.navigation import array_items, deref, object_properties, primary_type
from simulator.tools import ArgBinding
from toolgrad.sampling import stable_hash
from toolgrad.toolbox import BoundTool, Toolbox

from .text import norm, operation_phrase

_GUESSABLE_RANGE = 100
_ADDRESSED = ("read", "replace", "update", "delete")


def _id_like(name: str) -> bool:
    """An argument that names something (``petId``, ``feed_key``, ``username``), as opposed to a
    free value (``status``, ``quantity``, ``lastName``)."""
    n = norm(name)
    return n.endswith(("id", "key", "uuid", "slug", "code", "token", "username")) or n in ("login", "handle")


def _guessable(schema: JSONSchema) -> bool:
    """Few enough values that any of them names something: an enum, a small integer range."""
    node = deref(schema, schema)
    if isinstance(node.get("enum"), list) or node.get("type") == "boolean":
        return True
    low, high = node.get("minimum"), node.get("maximum")
    return (
        node.get("type") == "integer"
        and isinstance(low, int)
        and isinstance(high, int)
        and (high - low <= _GUESSABLE_RANGE)
    )


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
    # the name that steers a value made up for it (simulator.datagen.names.member_name): a
    # dashboard's `name` is a label, a user's a person's; None: the argument's own name
    steer: str | None = None

    @property
    def value_name(self) -> str:
        return self.steer or self.name


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
    # worked out from the above once (every call of the tool asks):
    fill_order: tuple[ArgSpec, ...] = field(init=False, repr=False)  # the address, references, the rest
    body_changes: tuple[ArgSpec, ...] = field(init=False, repr=False)  # body fields a write may set
    feed_sets: tuple[tuple[str, ...], ...] = field(init=False, repr=False)  # each feedable argument's keys
    _by_name: dict[str, ArgSpec] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_name: dict[str, ArgSpec] = {}
        for a in self.args:
            by_name.setdefault(a.name, a)  # the first of a name, as a search in order finds
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "feed_sets", tuple(a.keys for a in self.args if a.keys))
        object.__setattr__(self, "fill_order", tuple(
            sorted(self.args, key=lambda a: (a is not self.address, a.refers_to is None, a.name))))
        own_id = self.resource.id_field if self.resource and self.kind == "create" else None
        object.__setattr__(self, "body_changes", tuple(
            a for a in self.args
            if a.location == "body-field" and a.name != own_id and not deref(a.schema, a.schema).get("readOnly")
            and primary_type(a.schema, deref(a.schema, a.schema)) not in ("object", "array")))

    def arg(self, name: str) -> ArgSpec | None:
        return self._by_name.get(name)

    def fed_by(self, keys: set[str] | frozenset[str]) -> int:
        """How many of its arguments values with these planning keys would feed."""
        if self.feed_keys.isdisjoint(keys):
            return 0
        return sum(1 for arg_keys in self.feed_sets if not keys.isdisjoint(arg_keys))

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
            keys.add(f"field:{norm(prop)}")
            if parent:
                keys.add(f"field:{norm(parent + prop)}")
            walk(sub, prop, depth + 1)

    walk(schema, "", 0)
    return keys


def _referent(model: ResourceModel, argument: str) -> Resource | None:
    """The resource an argument like ``petId``, ``dashboard_id`` or ``feed_key`` refers to."""
    n = norm(argument)
    for suffix in ("id", "key", "uuid", "slug"):
        if n.endswith(suffix) and len(n) > len(suffix):
            stem = n[: -len(suffix)]
            for res in model.resources.values():
                if norm(res.name) == stem and not res.singleton:  # a document has no ids to refer to
                    return res
    return None


def _analyse(bound: BoundTool, op: Operation, model: ResourceModel) -> ToolInfo:
    binding = model.bindings.get(op.operation_id)
    kind = binding.kind if binding else "action"
    res = model.resources.get(binding.resource) if binding and binding.resource else None
    body_schema = (
        op.request_body.content.get(bound.tool.media_type)
        if (op.request_body is not None and bound.tool.media_type)
        else None
    )
    address_name = None
    if res is not None and kind in _ADDRESSED:
        names = {b.argument for b in bound.tool.bindings}
        address_name = (
            res.id_param if res.id_param in names else (res.id_field if res.id_field in names else None)
        )
    args = [_arg_spec(b, bound, op, model, kind, res, address_name, body_schema) for b in bound.tool.bindings]
    address = next((a for a in args if a.name == address_name), None)
    must_feed = address is not None and res is not None and res.writable and not _guessable(address.schema)
    response = success_schema(op)
    produces = _field_keys(response)
    if res is not None and kind in ("list", "create", "read", "replace", "update") and response:
        produces.add(f"record:{res.name}")
    return ToolInfo(
        bound.name,
        bound.env,
        kind,
        res,
        operation_phrase(op, kind, res),
        tuple(args),
        address,
        must_feed,
        frozenset(produces),
        op.method not in ("GET", "HEAD", "OPTIONS"),
        bool(response),
        body_schema,
        op.request_body is not None and op.request_body.required,
        frozenset(k for a in args for k in a.keys),
    )


def _arg_spec(
    b: ArgBinding, bound: BoundTool, op: Operation, model: ResourceModel, kind: str, res: Resource | None,
    address_name: str | None, body_schema: JSONSchema | None,
) -> ArgSpec:
    """What the policy knows of one argument: its schema, the record it refers to, and whether an
    earlier response may feed it (and under which keys)."""
    required = set(bound.tool.parameters.get("required", []))
    referent = res if b.argument == address_name else _referent(model, b.argument)
    own = res is not None and referent is not None and referent.name == res.name
    if b.argument == address_name:
        feedable = True
    elif kind in ("create", "replace", "update") and b.location in ("body-field", "body"):
        # a new or changed record's own fields are values to choose, except references to others
        feedable = referent is not None and not own
    else:
        feedable = referent is not None or _id_like(b.argument)
    keys = (
        ((f"field:{norm(b.argument)}",) + ((f"record:{referent.name}",) if referent else ()))
        if feedable
        else ()
    )
    owner = referent or res  # the record the argument is a field of, or names
    person = body_schema is not None and any(is_person_field(k) for k in object_properties(body_schema, body_schema))
    return ArgSpec(
        b.argument,
        b.location,
        b.argument in required or b.location == "path",
        _arg_schema(b, bound, op, body_schema),
        norm(b.argument),
        feedable,
        referent.name if referent else None,
        referent.id_field if referent else None,
        keys,
        member_name(owner.name if owner else None, b.argument, person),
    )


def _arg_schema(b: ArgBinding, bound: BoundTool, op: Operation, body_schema: JSONSchema | None) -> JSONSchema:
    """The schema of the value an argument binds: its parameter's, its body property's, the body's."""
    params = {p.name: p for p in op.parameters}
    if b.location in ("path", "query", "header", "cookie") and b.name in params:
        return params[b.name].schema
    if b.location == "body-field" and body_schema is not None:
        sub = object_properties(body_schema, body_schema).get(b.name, {})
        return {**sub, "$defs": body_schema["$defs"]} if "$defs" in body_schema else sub
    if body_schema is not None:
        return body_schema
    schema: JSONSchema = bound.tool.parameters["properties"].get(b.argument, {})
    return schema

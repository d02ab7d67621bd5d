"""Infer resources (collections and items) and what each operation does to them.

Pure: a :class:`~simulator.model.Spec` plus an optional overrides mapping in, a
:class:`ResourceModel` out. The rules, in order:

* a path whose last segment is a single template (``/pet/{petId}``) is an *item* path; the
  path without it is its *collection* path;
* on an item path GET reads, PUT replaces, PATCH and POST update, DELETE deletes;
* on a collection path GET lists and POST creates; PUT/PATCH there update the record named
  by the id field of the body (``PUT /pet`` in the petstore);
* a GET on ``<collection>/<literal>`` whose success response is a list of the collection's
  records is a filtered list (``/pet/findByStatus``);
* everything else is an *action*: answered deterministically from its inputs.

A resource is *writable* when some operation creates, updates or deletes it. Reads of an
unknown id are then 404; on a read-only resource every id resolves to a record generated
from the id (an API with unbounded data, like a user directory).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .model import JSONSchema, Operation, Spec
from .schemas import array_items, deref, object_properties, primary_type

Kind = Literal["list", "create", "read", "replace", "update", "delete", "action"]
KINDS: tuple[str, ...] = ("list", "create", "read", "replace", "update", "delete", "action")
WRITE_KINDS = frozenset({"create", "replace", "update", "delete"})

_TEMPLATE = re.compile(r"^\{([^{}]+)\}$")
_WRAPPER_KEYS = ("data", "items", "results", "records", "content", "values", "list", "entries", "elements")


@dataclass(frozen=True, slots=True)
class Resource:
    name: str
    collection_path: str
    item_path: str | None
    id_param: str | None  # the item path's template parameter
    id_field: str | None  # the record property holding the id (None: the id is only the key)
    id_type: str  # "integer" or "string"
    scope_params: tuple[str, ...]  # template parameters of the collection path (parents)
    schema: JSONSchema | None  # a response-direction record schema (self-contained)
    writable: bool
    id_schema: JSONSchema | None = None  # the id path parameter's schema (self-contained)


@dataclass(frozen=True, slots=True)
class Binding:
    operation_id: str
    kind: Kind
    resource: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceModel:
    resources: dict[str, Resource]
    bindings: dict[str, Binding]  # operation_id -> binding
    notes: tuple[str, ...] = field(default=())


def segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def template_name(segment: str) -> str | None:
    m = _TEMPLATE.match(segment)
    return m.group(1) if m else None


def singular(word: str) -> str:
    word = word.strip()
    lower = word.lower()
    if lower.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if lower.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if lower.endswith("s") and not lower.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def success_schema(op: Operation) -> JSONSchema | None:
    """The JSON schema of the first documented 2xx response that has one."""
    for resp in sorted(op.responses, key=lambda r: r.status):
        if resp.status.startswith("2") or resp.status == "2XX":
            for media, schema in resp.content.items():
                if "json" in media or media == "*/*":
                    return schema
    return None


def json_body_schema(op: Operation) -> JSONSchema | None:
    if op.request_body is None:
        return None
    for media, schema in op.request_body.content.items():
        if "json" in media or "form" in media:
            return schema
    return None


def record_schema_of(schema: JSONSchema | None) -> tuple[JSONSchema | None, bool]:
    """(record schema, is_list) for a response schema: an object, a list of objects, or a
    wrapper object holding the list under a conventional key."""
    if not schema:
        return None, False
    items = array_items(schema, schema)
    if items is not None:
        if primary_type(schema, items) == "object":
            return {**items, "$defs": schema.get("$defs", {})} if "$defs" in schema else items, True
        return None, True
    if primary_type(schema, schema) != "object":
        return None, False
    props = object_properties(schema, schema)
    for key in _WRAPPER_KEYS:
        if key in props:
            inner = array_items(schema, props[key])
            if inner is not None and primary_type(schema, inner) == "object":
                return ({**inner, "$defs": schema["$defs"]} if "$defs" in schema else inner), True
    return schema, False


def _id_field(record: JSONSchema | None, id_param: str | None, resource: str) -> tuple[str | None, str]:
    """Pick the record property that holds the id, and the id's JSON type."""
    props = object_properties(record, record) if record else {}
    candidates: list[str] = []
    if id_param:
        candidates.append(id_param)
        base = re.sub(r"(?i)[-_]?id$", "", id_param)
        if base != id_param:
            candidates += ["id", "ID", "Id", f"{base}_id", f"{base}Id"]
        else:
            candidates += ["id", "name"]
    candidates += ["id", "uuid", "key", "slug", "name", f"{resource}_id", f"{resource}Id"]
    for name in candidates:
        if name in props:
            ptype = primary_type(record or {}, props[name]) or "string"
            return name, "integer" if ptype == "integer" else "string"
    return None, "string"


def infer_resources(spec: Spec, overrides: dict[str, Any] | None = None) -> ResourceModel:
    overrides = overrides or {}
    by_path: dict[str, list[Operation]] = {}
    for op in spec.operations:
        by_path.setdefault(op.path, []).append(op)

    # item paths and their collections
    item_of: dict[str, str] = {}  # collection path -> item path
    for path in sorted(by_path):
        segs = segments(path)
        if segs and template_name(segs[-1]):
            parent = "/" + "/".join(segs[:-1]) if len(segs) > 1 else "/"
            item_of.setdefault(parent, path)

    collections: set[str] = set(item_of)
    for path, ops in by_path.items():
        for op in ops:
            if op.method == "POST" and path not in item_of.values():
                record, is_list = record_schema_of(success_schema(op))
                body = json_body_schema(op)
                if body is not None and primary_type(body, body) == "object" and record is not None:
                    collections.add(path)
            if op.method == "GET":
                _, is_list = record_schema_of(success_schema(op))
                if is_list and not template_name((segments(path) or ["x"])[-1]):
                    collections.add(path)

    resources: dict[str, Resource] = {}
    bindings: dict[str, Binding] = {}
    name_of: dict[str, str] = {}
    res_over = overrides.get("resources", {}) or {}

    for coll in sorted(collections):
        segs = segments(coll)
        literals = [s for s in segs if not template_name(s)]
        base = singular(literals[-1] if literals else "item").replace(".", "_")
        name = base
        n = 2
        while name in resources:
            name = f"{base}_{n}"
            n += 1
        item = item_of.get(coll)
        id_param = template_name(segments(item)[-1]) if item else None
        record = None
        for path in (item, coll):
            for op in by_path.get(path or "", ()):  # prefer what a read or list returns
                if op.method == "GET":
                    rec, _ = record_schema_of(success_schema(op))
                    record = record or rec
        if record is None:
            for op in by_path.get(coll, ()):
                if op.method == "POST":
                    record, _ = record_schema_of(success_schema(op))
        if record is not None and primary_type(record, record) != "object":
            record = None
        ov = res_over.get(name, {}) or {}
        id_field, id_type = _id_field(record, id_param, base)
        if "id_field" in ov:
            id_field = ov["id_field"]
        # the id's type is the path parameter's when there is one
        id_schema = None
        for op in by_path.get(item or "", ()):
            for p in op.parameters:
                if p.location == "path" and p.name == id_param:
                    id_schema = p.schema
                    id_type = "integer" if primary_type(p.schema, p.schema) == "integer" else "string"
        scope = tuple(t for t in (template_name(s) for s in segs) if t)
        resources[name] = Resource(name, coll, item, id_param, id_field, id_type, scope, record, False, id_schema)
        name_of[coll] = name

    def bind(op: Operation) -> Binding:
        segs = segments(op.path)
        if op.path in item_of.values():
            parent = "/" + "/".join(segs[:-1]) if len(segs) > 1 else "/"
            res = name_of.get(parent)
            kind = {"GET": "read", "PUT": "replace", "PATCH": "update", "POST": "update", "DELETE": "delete"}
            if res and op.method in kind:
                return Binding(op.operation_id, kind[op.method], res)  # type: ignore[arg-type]
        if op.path in name_of:
            res = name_of[op.path]
            if op.method == "GET":
                _, is_list = record_schema_of(success_schema(op))
                if is_list or success_schema(op) is None:
                    return Binding(op.operation_id, "list", res)
            if op.method == "POST":
                return Binding(op.operation_id, "create", res)
            if op.method in ("PUT", "PATCH") and resources[res].id_field:
                body = json_body_schema(op)
                if body is not None and resources[res].id_field in object_properties(body, body):
                    return Binding(op.operation_id, "update", res)
        if op.method == "GET" and len(segs) > 1 and not template_name(segs[-1]):
            parent = "/" + "/".join(segs[:-1])
            res = name_of.get(parent)
            if res:
                rec, is_list = record_schema_of(success_schema(op))
                if is_list and rec is not None:
                    return Binding(op.operation_id, "list", res)
        return Binding(op.operation_id, "action", None)

    op_over = overrides.get("operations", {}) or {}
    notes: list[str] = []
    for op in spec.operations:
        b = bind(op)
        if op.operation_id in op_over:
            o = op_over[op.operation_id] or {}
            b = Binding(op.operation_id, o.get("kind", b.kind), o.get("resource", b.resource))
            if b.kind not in KINDS:
                raise ValueError(f"override for {op.operation_id}: unknown kind {b.kind!r}")
            if b.resource is not None and b.resource not in resources:
                raise ValueError(f"override for {op.operation_id}: unknown resource {b.resource!r}")
        bindings[op.operation_id] = b

    writable = {b.resource for b in bindings.values() if b.kind in WRITE_KINDS and b.resource}
    for name, res in list(resources.items()):
        ov = res_over.get(name, {}) or {}
        is_writable = bool(ov.get("writable", name in writable))
        resources[name] = Resource(
            res.name, res.collection_path, res.item_path, res.id_param, res.id_field,
            res.id_type, res.scope_params, res.schema, is_writable, res.id_schema,
        )
    used = {b.resource for b in bindings.values() if b.resource}
    for name in sorted(set(resources) - used):
        del resources[name]
        notes.append(f"collection {name!r} has no operations bound to it")
    return ResourceModel(resources, bindings, tuple(notes))


def describe(model: ResourceModel) -> list[dict[str, Any]]:
    """A JSON-friendly summary (used by ``toolgrad sim check``)."""
    out = []
    for name in sorted(model.resources):
        r = model.resources[name]
        ops = sorted(f"{b.kind}:{b.operation_id}" for b in model.bindings.values() if b.resource == name)
        out.append({
            "name": name, "collection": r.collection_path, "item": r.item_path,
            "id_field": r.id_field, "id_type": r.id_type, "writable": r.writable,
            "scope": list(r.scope_params), "operations": ops,
        })
    return out


def deref_record(resource: Resource) -> JSONSchema:
    return deref(resource.schema or {}, resource.schema or {})

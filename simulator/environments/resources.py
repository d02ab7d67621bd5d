"""Infer resources (collections and items) and what each operation does to them.

Pure: a :class:`~simulator.spec.model.Spec` plus an optional overrides mapping in, a
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
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from simulator.datagen.names import singular
from simulator.spec.model import JSONSchema, Operation, Spec
from simulator.spec.navigation import array_items, deref, object_properties, primary_type

from .envelopes import ID_NAMES as _ID_NAMES
from .envelopes import WRAPPER_KEYS, list_key, unwrap_record
from .identity import ID_SUFFIX as _ID_SUFFIX
from .identity import alias_fields, creates_when_absent, json_body_schema, spelling, written_aliases

Kind = Literal["list", "create", "read", "replace", "update", "delete", "action"]
KINDS: tuple[str, ...] = ("list", "create", "read", "replace", "update", "delete", "action")
WRITE_KINDS = frozenset({"create", "replace", "update", "delete"})

_TEMPLATE = re.compile(r"^\{([^{}]+)\}$")
_SUFFIXED = re.compile(r"^\{([^{}]+)\}(\.[A-Za-z0-9]+)$")  # {Sid}.json
_EXTENSION = re.compile(r"\.[A-Za-z0-9]+$")
_WRAPPER_KEYS = WRAPPER_KEYS  # what toolgrad's offline policy imports
_READS = re.compile(r"^(get|search|find|list|query|fetch|lookup|retrieve)(?![a-z])"
                    r"|^(Get|Search|Find|List|Query|Fetch|Lookup|Retrieve)\b")
_VERSION = re.compile(r"(?i)^v\d+(\.\d+)*$")


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
    # the record fields whose values also address a record through the item path (username, slug)
    aliases: tuple[str, ...] = ()
    # the name records are stored under: resources that are one collection under two paths
    # (/products and /products/v2) share it; "" means the resource's own name
    shared_store: str = ""
    # one document per scope at a path that is no collection (a repository's interaction limits,
    # an organisation's settings): read, replaced, updated and deleted there, never listed
    singleton: bool = False

    @property
    def store(self) -> str:
        return self.shared_store or self.name


@dataclass(frozen=True, slots=True)
class Binding:
    operation_id: str
    kind: Kind
    resource: str | None = None
    upsert: bool = False  # a replace/update that creates the record when it is absent


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


def success_schema(op: Operation) -> JSONSchema | None:
    """The JSON schema of the first documented 2xx response that has one."""
    for resp in sorted(op.responses, key=lambda r: r.status):
        if resp.status.startswith("2") or resp.status == "2XX":
            for media, schema in resp.content.items():
                if "json" in media or media == "*/*":
                    return schema
    return None


def _with_defs(schema: JSONSchema, inner: JSONSchema) -> JSONSchema:
    return {**inner, "$defs": schema["$defs"]} if "$defs" in schema else inner


def record_schema_of(schema: JSONSchema | None) -> tuple[JSONSchema | None, bool]:
    """(record schema, is_list) for a response schema: an object, a list of objects, a wrapper
    object holding the list, or an envelope holding one record (``{"status": "ok", "data":
    {...}}``, ``{"tag": {...}}``); see :mod:`simulator.environments.envelopes`. List items in an envelope of
    their own yield the record inside."""
    if not schema:
        return None, False
    items = array_items(schema, schema)
    if items is None and (key := list_key(schema, schema)) is not None:
        items = array_items(schema, object_properties(schema, schema)[key])
    if items is not None:
        if primary_type(schema, items) == "object":
            return _with_defs(schema, unwrap_record(schema, items)[0]), True
        return None, True
    if primary_type(schema, schema) != "object":
        return None, False
    inner, key = unwrap_record(schema, schema)
    return (_with_defs(schema, inner) if key else schema), False


def _id_field(record: JSONSchema | None, id_param: str | None, resource: str) -> tuple[str | None, str]:
    """Pick the record property that holds the id, and the id's JSON type."""
    props = object_properties(record, record) if record else {}
    candidates: list[str] = []
    if id_param:
        candidates.append(id_param)
        if "user" in id_param.lower() or id_param.lower() in ("owner", "login"):
            candidates.append("login")  # GitHub-style users: the username is the login
        m = _ID_SUFFIX.match(id_param)
        if m:  # petId -> id, pet_id; feed_key -> key, feed_key; username -> name
            base, suffix = m.group(1), m.group(2).lower()
            candidates += [suffix, suffix.upper(), suffix.capitalize(), f"{base}_{suffix}",
                           f"{base}{suffix.capitalize()}"]
    candidates += [*_ID_NAMES, f"{resource}_id", f"{resource}Id", "_id", "$id"]
    if id_param:  # floating_ip -> ip
        candidates.append(re.split(r"[-_.]", id_param)[-1])
    if id_param:  # Twilio's {Sid} names the record's sid, {CallSid} its call_sid
        candidates += [p for p in props if p.lower() == id_param.lower()]
        candidates += [p for p in props if spelling(p) == spelling(id_param)]
    for name in candidates:
        if name in props:
            ptype = primary_type(record or {}, props[name]) or "string"
            return name, "integer" if ptype == "integer" else "string"
    return None, "string"


def _parent(path: str) -> str:
    segs = segments(path)
    return "/" + "/".join(segs[:-1]) if len(segs) > 1 else "/"


def _list_record(op: Operation) -> JSONSchema | None:
    """The record schema of a GET whose success response is a list of objects."""
    if op.method != "GET":
        return None
    record, is_list = record_schema_of(success_schema(op))
    return record if is_list else None


def _same_record(a: JSONSchema | None, b: JSONSchema | None) -> bool:
    """Two record schemas describe the same records (the same property names)."""
    if not a or not b:
        return False
    names_a, names_b = set(object_properties(a, a)), set(object_properties(b, b))
    return bool(names_a) and names_a == names_b


def item_param(segment: str) -> str | None:
    """The parameter an item path's last segment holds: ``{petId}``, or ``{Sid}.json``."""
    m = _TEMPLATE.match(segment) or _SUFFIXED.match(segment)
    return m.group(1) if m else None


def _item_paths(by_path: dict[str, list[Operation]]) -> dict[str, str]:
    """collection path -> item path, for every path ending in a single template, and for every
    ``.../Calls/{Sid}.json`` whose collection ``.../Calls.json`` the spec has (Twilio)."""
    item_of: dict[str, str] = {}
    for path in sorted(by_path):
        segs = segments(path)
        if segs and template_name(segs[-1]):
            item_of.setdefault(_parent(path), path)
        elif segs and (m := _SUFFIXED.match(segs[-1])) and (coll := _parent(path) + m.group(2)) in by_path:
            item_of.setdefault(coll, path)
    return item_of


def _record_at(coll: str, item: str | None, by_path: dict[str, list[Operation]]) -> JSONSchema | None:
    """The record schema of a collection: what a read or list returns, else what a create returns.
    A GET on the collection that answers one object with no id field (discourse's summary of
    badges and their groupings) is not a record; one with an id is (a list an old spec declares
    as its item, gitlab v3's projects)."""
    record = None
    for path in (item, coll):
        for op in by_path.get(path or "", ()):
            if op.method == "GET":
                rec, is_list = record_schema_of(success_schema(op))
                if path == coll and item is not None and not is_list and rec is not None and \
                        not any(name in object_properties(rec, rec) for name in _ID_NAMES):
                    continue
                record = record or rec
    if record is None:
        for op in by_path.get(coll, ()):
            if op.method == "POST":
                record, _ = record_schema_of(success_schema(op))
    if record is not None and primary_type(record, record) != "object":
        return None
    return record


def _collections(by_path: dict[str, list[Operation]], item_of: dict[str, str]) -> set[str]:
    """Item parents, POST-creates-a-record paths and GET-lists-records paths -- except a GET
    on ``<collection>/<literal>`` listing the collection's own records (a filtered list)."""
    collections: set[str] = set(item_of)
    for path, ops in by_path.items():
        for op in ops:
            if op.method == "POST" and path not in item_of.values():
                record, _ = record_schema_of(success_schema(op))
                body = json_body_schema(op)
                if body is not None and primary_type(body, body) == "object" and record is not None:
                    collections.add(path)
    for path, ops in by_path.items():
        for op in ops:
            listed = _list_record(op)
            if listed is None or template_name((segments(path) or ["x"])[-1]):
                continue
            parent = _parent(path)
            if parent in collections and _same_record(listed, _record_at(parent, item_of.get(parent), by_path)):
                continue
            collections.add(path)
    return collections


def _resource_name(coll: str, taken: dict[str, Resource]) -> tuple[str, str]:
    literals = [s for s in segments(coll) if not template_name(s) and not _VERSION.match(s)]
    base = singular(_EXTENSION.sub("", literals[-1]) if literals else "item").replace(".", "_")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name, base


def _make_resource(name: str, base: str, coll: str, item: str | None, by_path: dict[str, list[Operation]],
                   override: dict[str, Any]) -> Resource:
    id_param = item_param(segments(item)[-1]) if item else None
    record = _record_at(coll, item, by_path)
    id_field, id_type = _id_field(record, id_param, base)
    if "id_field" in override:
        id_field = override["id_field"]
    id_schema = None  # the id's type is the path parameter's when there is one
    for op in by_path.get(item or "", ()):
        for p in op.parameters:
            if p.location == "path" and p.name == id_param:
                id_schema = p.schema
                id_type = "integer" if primary_type(p.schema, p.schema) == "integer" else "string"
    scope = tuple(t for t in (template_name(s) for s in segments(coll)) if t)
    aliases = tuple(override.get("aliases", alias_fields(record, id_param, id_field)))
    return Resource(name, coll, item, id_param, id_field, id_type, scope, record, False, id_schema, aliases,
                    str(override.get("store", "")))


def _shared_stores(resources: dict[str, Resource]) -> dict[str, Resource]:
    """One store for collections that are the same resource under two paths: the same name
    once version segments are dropped (``/products/v2``, ``/products``; ``/api/baskets``,
    ``/baskets``), the same number of parent parameters and records with the same fields."""
    first: dict[tuple[str, int, frozenset[str], str], str] = {}
    out = dict(resources)
    for name in sorted(resources):
        res = resources[name]
        if res.shared_store or not res.schema or res.singleton:  # a document is its scope's own
            continue
        literals = [s for s in segments(res.collection_path) if not template_name(s) and not _VERSION.match(s)]
        fields = frozenset(object_properties(res.schema, res.schema))
        key = (singular(literals[-1]) if literals else "", len(res.scope_params), fields, res.id_field or "")
        if not fields or key in first:
            out[name] = replace(res, shared_store=first.get(key, ""))
        else:
            first[key] = name
    return out


_ITEM_KINDS: dict[str, Kind] = {"GET": "read", "PUT": "replace", "PATCH": "update", "POST": "update",
                                "DELETE": "delete"}


def _bind(op: Operation, resources: dict[str, Resource], name_of: dict[str, str], collection_of: dict[str, str],
          readable: set[str]) -> Binding:
    segs = segments(op.path)
    if op.path in collection_of:  # an item path
        res = name_of.get(collection_of[op.path])
        # a POST on an item nothing reads is an action (enable-or-disable), not an update
        if res and op.method == "POST" and any(r.status == "201" for r in op.responses):
            return Binding(op.operation_id, "create", res)  # POST /baskets/{name}: 201 Created
        if res and op.method in _ITEM_KINDS and (op.method != "POST" or op.path in readable):
            return Binding(op.operation_id, _ITEM_KINDS[op.method], res, creates_when_absent(op))
    if op.path in name_of:
        res = name_of[op.path]
        if op.method == "GET":
            _, is_list = record_schema_of(success_schema(op))
            if is_list or success_schema(op) is None:
                return Binding(op.operation_id, "list", res)
        if op.method == "POST" and (_READS.match(op.operation_id) or _READS.match(op.summary)):
            # a POST that fetches (getPodcastsInBatch, searchItems): its body is criteria, not a record
            return Binding(op.operation_id, "action", None)
        if op.method == "POST":
            return Binding(op.operation_id, "create", res)
        id_field = resources[res].id_field
        if op.method in ("PUT", "PATCH") and id_field:
            body = json_body_schema(op)
            if body is not None and id_field in object_properties(body, body):
                return Binding(op.operation_id, "update", res)
        if op.method == "PUT" and _names_body(resources[res], json_body_schema(op)):
            return Binding(op.operation_id, "replace", res)  # GitHub's set-labels: the members, by name
        if op.method == "DELETE" and not _names_what(op):
            return Binding(op.operation_id, "delete", res)  # the members it selects (an issue's labels: all)
    if op.method == "GET" and len(segs) > 1 and not template_name(segs[-1]):
        res = name_of.get(_parent(op.path))
        if res and _list_record(op) is not None:
            return Binding(op.operation_id, "list", res)
    return Binding(op.operation_id, "action", None)


def _required_query(op: Operation) -> bool:
    """Whether ``op`` names what it acts on in a required query parameter (gitlab's file read by
    ``?file_path=``, Spotify's unfollow by ``?ids=``)."""
    return any(p.required and p.location == "query" for p in op.parameters)


def _names_what(op: Operation) -> bool:
    """Whether a DELETE names what it removes, in a body or a required query parameter
    (discourse's member removal, Spotify's unfollow): not a whole collection or document."""
    return op.request_body is not None or _required_query(op)


def _clears(op: Operation, b: Binding, resources: dict[str, Resource]) -> bool:
    """Whether ``b`` is a DELETE of a whole collection (of the members its query selects)."""
    res = resources.get(b.resource or "")
    return b.kind == "delete" and res is not None and op.path == res.collection_path != res.item_path


def _names_body(res: Resource, body: JSONSchema | None) -> bool:
    """Whether a collection's PUT ``body`` may be nothing but the names of its members: an array
    of strings, or one under the collection's own name (``{"labels": ["bug"]}`` to ``.../labels``),
    for records an item path names by a string field."""
    if body is None or res.id_type != "string" or not res.id_param or res.id_param != res.id_field:
        return False
    resolved = deref(body, body)
    own = segments(res.collection_path)[-1]
    for shape in [resolved, *(deref(body, b) for b in resolved.get("oneOf") or resolved.get("anyOf") or ()
                             if isinstance(b, dict))]:
        listed = object_properties(body, shape).get(own) if primary_type(body, shape) == "object" else shape
        if isinstance(listed, dict) and array_items(body, listed) is not None:
            return True
    return False


_OPERATION_KEYS = frozenset({"kind", "resource", "upsert"})
_RESOURCE_KEYS = frozenset({"id_field", "writable", "aliases", "store"})


# what inference may have bound a singleton's path to as a collection: a create, a clear
_COLLECTION_KINDS: dict[str, Kind] = {"POST": "create", "DELETE": "delete"}


def _singletons(by_path: dict[str, list[Operation]], bindings: dict[str, Binding], taken: dict[str, Resource],
                name_of: dict[str, str]) -> dict[str, tuple[Resource, dict[str, Kind]]]:
    """Paths that hold one document per scope (their parents' values), no collection: a GET
    answering one object (or nothing: GitHub's ``/gists/{gist_id}/star``, 204 or 404) beside a
    PUT or PATCH whose body sets members of that object, or a DELETE, all bound as actions
    (GitHub's ``/repos/{owner}/{repo}/interaction-limits``, gitlab's notification settings).
    A POST there that was taken for a create in a collection (GitHub's ``POST
    /repos/{owner}/{repo}/pages``, which enables the one Pages site) creates the document, and a
    DELETE taken for a clear of it removes it, under the collection's name. Path -> (the
    resource, operation id -> kind). A write whose body shares no member with the document stays
    an action (Spotify's ``PUT /me/following`` adds ids, which ``GET`` lists)."""
    found: dict[str, tuple[Resource, dict[str, Kind]]] = {}
    names = dict(taken)
    for path in sorted(by_path):
        ops = by_path[path]
        segs = segments(path)
        if path in name_of and taken[name_of[path]].item_path is not None:
            continue  # a collection whose records an item path names (gitlab's todos)
        if not segs or item_param(segs[-1]) or any(
                bindings[op.operation_id].kind not in ("action", _COLLECTION_KINDS.get(op.method)) for op in ops):
            continue
        get = next((op for op in ops if op.method == "GET"), None)
        if get is None or _required_query(get):
            continue  # a read that names what it reads (gitlab's files by ?file_path=) reads no one document
        readable, record = _document_read(get)
        kinds = _document_kinds(ops, bindings, record) if readable else {}
        if not kinds:
            continue
        kinds[get.operation_id] = "read"
        name = name_of[path] if path in name_of else _resource_name(path, names)[0]
        scope = tuple(t for t in (template_name(s) for s in segs) if t)
        names[name] = found_res = Resource(name, path, path, None, None, "string", scope, record, True,
                                           singleton=True)
        found[path] = (found_res, kinds)
    return found


def _document_read(get: Operation) -> tuple[bool, JSONSchema | None]:
    """(whether ``get`` reads one document, its schema: None for a read answering no body)."""
    response = success_schema(get)
    if response is None:  # a redirect or a download is nothing a write could set
        return any(r.status.startswith("2") and not r.content for r in get.responses), None
    record, is_list = record_schema_of(response)
    if is_list or record is None or not object_properties(record, record):
        return False, None
    return True, _one_shape(record)


def _document_kinds(ops: list[Operation], bindings: dict[str, Binding],
                    record: JSONSchema | None) -> dict[str, Kind]:
    """Operation id -> kind of the writes at a document's path; empty when a POST there
    creates something else (discourse's badges, whose GET is a summary of them)."""
    fields = set(object_properties(record, record)) if record else set()
    kinds: dict[str, Kind] = {}
    for op in ops:
        bound = bindings[op.operation_id].kind
        if op.method == "POST" and bound == "create":
            if not _same_record(record, record_schema_of(success_schema(op))[0]):
                return {}
            kinds[op.operation_id] = "create"
        elif op.method == "DELETE" and not _names_what(op):  # bound as an action or as a clear
            kinds[op.operation_id] = "delete"
        elif op.method in ("PUT", "PATCH"):
            body = json_body_schema(op)
            if record is None or (body is not None and fields & set(
                    object_properties(body, unwrap_record(body, body)[0]))):
                kinds[op.operation_id] = "update"
    return kinds


def _one_shape(record: JSONSchema) -> JSONSchema:
    """The document a read answers when it is set: of GitHub's ``anyOf`` [the limits, ``{}``],
    the one branch with properties (the empty object is what a read answers once it is removed)."""
    resolved = deref(record, record)
    branches = resolved.get("anyOf") or resolved.get("oneOf")
    if isinstance(branches, list) and "properties" not in resolved:
        shaped = [b for b in branches if isinstance(b, dict) and object_properties(record, b)]
        if len(shaped) == 1:
            return _with_defs(record, deref(record, shaped[0]))
    return record


def check_overrides(overrides: dict[str, Any]) -> None:
    """Refuse an override the simulator would silently ignore (a typo, a list given as text)."""
    for section, known in (("operations", _OPERATION_KEYS), ("resources", _RESOURCE_KEYS)):
        for name, override in (overrides.get(section) or {}).items():
            if not isinstance(override, dict):
                raise ValueError(f"override for {name}: expected a mapping of {sorted(known)}")
            unknown = set(override) - known
            if unknown:
                raise ValueError(f"override for {name}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
            if "aliases" in override and not (isinstance(override["aliases"], list)
                                              and all(isinstance(a, str) for a in override["aliases"])):
                raise ValueError(f"override for {name}: aliases must be a list of field names")


def _apply_override(b: Binding, override: dict[str, Any] | None, resources: dict[str, Resource]) -> Binding:
    o = override or {}
    b = Binding(b.operation_id, o.get("kind", b.kind), o.get("resource", b.resource),
                bool(o.get("upsert", b.upsert)))
    if b.kind not in KINDS:
        raise ValueError(f"override for {b.operation_id}: unknown kind {b.kind!r}")
    if b.resource is not None and b.resource not in resources:
        raise ValueError(f"override for {b.operation_id}: unknown resource {b.resource!r}")
    return b


def infer_resources(spec: Spec, overrides: dict[str, Any] | None = None) -> ResourceModel:
    overrides = overrides or {}
    by_path: dict[str, list[Operation]] = {}
    for op in spec.operations:
        by_path.setdefault(op.path, []).append(op)
    item_of = _item_paths(by_path)
    check_overrides(overrides)
    res_over = overrides.get("resources", {}) or {}
    op_over = overrides.get("operations", {}) or {}

    resources: dict[str, Resource] = {}
    name_of: dict[str, str] = {}
    for coll in sorted(_collections(by_path, item_of)):
        name, base = _resource_name(coll, resources)
        resources[name] = _make_resource(name, base, coll, item_of.get(coll), by_path, res_over.get(name) or {})
        name_of[coll] = name

    readable = {path for path, ops in by_path.items() if any(op.method == "GET" for op in ops)}
    collection_of = {item: coll for coll, item in item_of.items()}
    bindings = {op.operation_id: _bind(op, resources, name_of, collection_of, readable) for op in spec.operations}
    ops_by_id = {op.operation_id: op for op in spec.operations}
    written = {b.resource for b in bindings.values() if b.kind in WRITE_KINDS and b.resource
               and not _clears(ops_by_id[b.operation_id], b, resources)}
    for operation_id, b in list(bindings.items()):
        if _clears(ops_by_id[operation_id], b, resources) and b.resource not in written:
            # a read-only collection stays one: any id a client names reads a record, which a
            # clear could not take back (adafruit's activities, a basket's requests)
            bindings[operation_id] = Binding(operation_id, "action", None)
    for res, kinds in _singletons(by_path, bindings, resources, name_of).values():
        resources[res.name] = res
        for operation_id, kind in kinds.items():
            bindings[operation_id] = Binding(operation_id, kind, res.name)
    for operation_id, override in op_over.items():
        if operation_id in bindings:
            bindings[operation_id] = _apply_override(bindings[operation_id], override, resources)

    writable = {b.resource for b in bindings.values() if b.kind in WRITE_KINDS and b.resource}
    for name, res in list(resources.items()):
        is_writable = bool((res_over.get(name) or {}).get("writable", name in writable))
        resources[name] = replace(res, writable=is_writable)
    resources = _shared_stores(resources)
    ops = {op.operation_id: op for op in spec.operations}
    for name, res in list(resources.items()):
        creates = [ops[b.operation_id] for b in bindings.values() if b.resource == name and b.kind == "create"]
        extra = () if "aliases" in (res_over.get(name) or {}) else written_aliases(res.schema, res.id_param, creates)
        if extra:
            resources[name] = replace(res, aliases=(*res.aliases, *extra))
    notes: list[str] = []
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
            "scope": list(r.scope_params), "aliases": list(r.aliases), "store": r.store, "operations": ops,
            "singleton": r.singleton,
        })
    return out


def deref_record(resource: Resource) -> JSONSchema:
    return deref(resource.schema or {}, resource.schema or {})

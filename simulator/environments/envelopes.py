"""Envelopes: where a record or a list of records sits inside a request or response body.

APIs wrap what they carry. One record: ``{"tag": {...}}`` (DigitalOcean), ``{"data": {...},
"status_code": 200}`` (Apideck), ``{"customer_additional_field": {...}}`` (Jumpseller, even
inside lists). A list: ``[...]``, ``{"data": [...], "total": 3}``, ``{"tags": [...], "links":
{...}, "meta": {...}}``. The rules, over self-contained JSON Schemas:

* an object with an identifying property (``id``, ``uuid``, ``key``, ``slug``, ``name``) is a
  record, never an envelope;
* otherwise its *record key* is a conventional single-record key (``data``, ``item``,
  ``result``, ``record``, ``object``) holding an object with properties, or the only property
  left once links, paging and status members are set aside, when that holds an object with
  properties;
* a list wrapper's *list key* is a conventional key (``data``, ``items``, ``results`` ...)
  holding an array of objects, else its only property holding an array of objects when no
  other property is text (``{"tags": [...], "links": {...}, "meta": {...}}``; a record with a
  list in it has text of its own).

Pure functions of the schema: the same schema gives the same keys.
"""

from __future__ import annotations

import re
from typing import Any

from simulator.spec.model import JSONSchema
from simulator.spec.navigation import array_items, deref, object_properties, primary_type

WRAPPER_KEYS = ("data", "items", "results", "records", "content", "values", "value", "list", "entries", "elements")
SINGLE_KEYS = ("data", "item", "result", "record", "object")
ID_NAMES = ("id", "uuid", "key", "slug", "name")
# envelope members that travel beside a record and are no part of it
META_KEYS = frozenset({"links", "meta", "pagination", "paging", "included", "jsonapi", "warnings",
                       "errors", "status", "status_code", "statuscode", "code", "message", "request_id"})


_PAGING = re.compile(r"(?i)next|prev|cursor|page|token|link|offset|^(uri|url|href|self)$")


def is_record_object(root: JSONSchema, schema: Any) -> bool:
    """An object schema with properties of its own."""
    return primary_type(root, schema) == "object" and bool(object_properties(root, schema))


def record_key(root: JSONSchema, schema: Any) -> str | None:
    """The property of a single-record envelope that holds the record (None: not an envelope)."""
    if primary_type(root, schema) != "object":
        return None
    props = object_properties(root, schema)
    if not props or any(name in props for name in ID_NAMES):
        return None
    for key in SINGLE_KEYS:
        if key in props and is_record_object(root, props[key]):
            return key
    # the one member left once links and paging are set aside ({"floating_ip": {...}, "links": {...}})
    members = [(k, p) for k, p in props.items() if k.lower().lstrip("_$") not in META_KEYS]
    if len(members) == 1:
        (key, inner), = members
        if is_record_object(root, inner) and array_items(root, inner) is None:
            return key
    return None


def list_key(root: JSONSchema, schema: Any) -> str | None:
    """The property of a list wrapper that holds the array of records (None: not a wrapper)."""
    if primary_type(root, schema) != "object":
        return None
    props = object_properties(root, schema)
    if any(name in props for name in ID_NAMES):
        return None  # a record with a list in it (a zone's records, a pet's tags)
    for key in WRAPPER_KEYS:
        if key in props:
            inner = array_items(root, props[key])
            if inner is not None and primary_type(root, inner) == "object":
                return key
    arrays = [k for k, p in props.items()
              if (items := array_items(root, p)) is not None and primary_type(root, items) == "object"]
    if len(arrays) != 1:
        return None
    # a record with a list in it (a pet's tags, a configuration's rules) has text of its own;
    # a wrapper has only paging members beside the list (links, meta, total, has_more, and
    # the list's own address: twilio's `uri`)
    if any(primary_type(root, p) == "string" and not _PAGING.search(k) for k, p in props.items() if k != arrays[0]):
        return None
    return arrays[0]


def unwrap_record(root: JSONSchema, schema: Any) -> tuple[JSONSchema, str | None]:
    """(the record's schema, the envelope key or None) for a single-record body schema."""
    key = record_key(root, schema)
    if key is None:
        return schema, None
    return object_properties(root, schema)[key], key


def unwrap_body(root: JSONSchema, schema: Any, body: Any) -> Any:
    """The record a request body carries: the member its envelope names, else the body."""
    key = record_key(root, schema)
    if key is not None and isinstance(body, dict) and isinstance(body.get(key), dict):
        return body[key]
    return body


def bare_list(schema: JSONSchema) -> bool:
    """Whether :func:`wrap_list` answers the records themselves: an array of records that are
    not inside envelopes of their own."""
    items = array_items(schema, schema)
    return items is not None and record_key(schema, items) is None


def wrap_list(schema: JSONSchema, records: list[dict[str, Any]], total: int, status: int | None = None) -> Any:
    """Put records where a list response schema expects them: the array itself, or the list key
    of a wrapper object (with a total where the wrapper has one); each record inside its own
    envelope where the items have one (``[{"customer_additional_field": {...}}]``)."""
    items = array_items(schema, schema)
    if items is not None:
        return _in_item_envelopes(schema, items, records)
    props = object_properties(schema, schema)
    key = list_key(schema, schema)
    if key is None:
        key = next((k for k in WRAPPER_KEYS if k in props and array_items(schema, props[k]) is not None), None)
    if key is None:
        key = next((k for k, p in props.items() if array_items(schema, p) is not None), None)
    if key is None:
        return None
    items = array_items(schema, props[key]) or {}
    hint: dict[str, Any] = {**envelope_hint(props, status), key: _in_item_envelopes(schema, items, records)}
    for name in ("total", "count", "total_count", "totalCount", "size", "totalElements"):
        if name in props:
            hint[name] = total
    return hint


def plain_record(schema: JSONSchema, id_field: str | None) -> bool:
    """Whether :func:`wrap_record` answers any record as it is under this response schema (one
    that is not an array and not an object with properties, or one with the id field itself)."""
    resolved = deref(schema, schema)
    if array_items(schema, resolved) is not None:
        return False
    if primary_type(schema, resolved) != "object":
        return True
    props = object_properties(schema, resolved)
    return not props or bool(id_field and id_field in props)


def wrap_record(schema: JSONSchema, record: dict[str, Any], id_field: str | None, name: str,
                status: int | None = None) -> Any:
    """A record as the response expects it: itself, inside the envelope property whose schema
    fits it best (``{"status_code": 200, "data": {...}}``), or the one item of an array."""
    if plain_record(schema, id_field):
        return record
    resolved = deref(schema, schema)
    items = array_items(schema, resolved)
    if items is not None:  # a create answering the list of what it made: this one
        return _in_item_envelopes(schema, items, [record])
    props = object_properties(schema, resolved)
    best, best_fit = None, len(set(record) & set(props))
    for key in dict.fromkeys(("data", "item", "result", name, *props)):
        sub = props.get(key)
        if sub is None or primary_type(schema, sub) != "object":
            continue
        inner = object_properties(schema, sub)
        fit = len(set(record) & set(inner)) + (id_field in inner)
        if fit > best_fit:
            best, best_fit = key, fit
    if best is None:
        return record
    return {**envelope_hint(props, status), best: record}


def envelope_hint(props: dict[str, JSONSchema], status: int | None) -> dict[str, Any]:
    """Envelope members that repeat the HTTP status (``status_code``), when the schema has them."""
    if status is None:
        return {}
    return {name: status for name in ("status_code", "statusCode", "code") if name in props}


def _in_item_envelopes(root: JSONSchema, items: JSONSchema, records: list[dict[str, Any]]) -> list[Any]:
    key = record_key(root, items)
    return records if key is None else [{key: r} for r in records]

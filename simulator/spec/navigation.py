"""Small, pure helpers over self-contained JSON Schemas (see model.py): follow ``$ref``,
find an object's properties, an array's items, the primary type."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from simulator.canonical import unescape_token

from .model import JSONSchema

_EMPTY: JSONSchema = {}


def deref(root: JSONSchema, schema: Any, *, limit: int = 32) -> JSONSchema:
    """Follow ``$ref`` chains (``#/$defs/...`` inside ``root``) to a schema without a top-level ref."""
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return _EMPTY
        node: Any = root
        for part in ref[2:].split("/"):
            part = unescape_token(unquote(part))
            if not isinstance(node, dict) or part not in node:
                return _EMPTY
            node = node[part]
        schema = node
        seen += 1
        if seen > limit:
            return _EMPTY
    return schema if isinstance(schema, dict) else _EMPTY


def _branches(root: JSONSchema, schema: JSONSchema) -> list[JSONSchema]:
    """The schema itself plus its allOf members (recursively), all dereferenced."""
    out = [schema]
    for sub in schema.get("allOf", ()):
        out.extend(_branches(root, deref(root, sub)))
    return out


def object_properties(root: JSONSchema, schema: Any) -> dict[str, JSONSchema]:
    """Properties of an object schema, merging allOf members; the first oneOf/anyOf branch
    that has properties contributes when the schema has none of its own."""
    schema = deref(root, schema)
    props: dict[str, JSONSchema] = {}
    for branch in _branches(root, schema):
        props.update(branch.get("properties", {}))
    if not props:
        for key in ("oneOf", "anyOf"):
            for sub in schema.get(key, ()):
                sub_props = object_properties(root, sub)
                if sub_props:
                    return sub_props
    return props


def required_properties(root: JSONSchema, schema: Any) -> list[str]:
    schema = deref(root, schema)
    out: list[str] = []
    for branch in _branches(root, schema):
        for name in branch.get("required", ()):
            if name not in out:
                out.append(name)
    return out


def primary_type(root: JSONSchema, schema: Any) -> str | None:
    """The first non-null JSON type a schema admits, looking through refs and compositions."""
    schema = deref(root, schema)
    t = schema.get("type")
    if isinstance(t, str):
        return t
    if isinstance(t, list):
        for item in t:
            if item != "null":
                return str(item)
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(key, ()):
            found = primary_type(root, sub)
            if found:
                return found
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    if schema.get("enum"):
        value = schema["enum"][0]
        return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(type(value))
    return None


def array_items(root: JSONSchema, schema: Any) -> JSONSchema | None:
    """The item schema of an array schema (None when it is not an array)."""
    schema = deref(root, schema)
    for branch in [schema, *schema.get("allOf", ()), *schema.get("oneOf", ()), *schema.get("anyOf", ())]:
        branch = deref(root, branch)
        if primary_type(root, branch) == "array":
            items = branch.get("items")
            return items if isinstance(items, dict) else _EMPTY
    return None


def sub_schema(root: JSONSchema, schema: JSONSchema) -> JSONSchema:
    """A sub-schema made self-contained again by carrying the root's ``$defs``."""
    if "$defs" in root and "$defs" not in schema:
        return {**schema, "$defs": root["$defs"]}
    return schema

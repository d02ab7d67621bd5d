"""OpenAI function-calling tools for a spec, and the way back from a tool call to a request.

One function per operation. Its parameters merge path, query, header and cookie parameters
and the body: an object body's properties become arguments of their own unless a name clashes
with a parameter, in which case the whole body is one argument named ``body``. Names are
unique within a spec and at most 64 characters (OpenAI's limit).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from simulator.canonical import json_bytes
from simulator.messages import SimRequest, SimResponse
from simulator.service.validation import media_kind, sent_media
from simulator.spec.model import JSONSchema, Operation, Spec
from simulator.spec.navigation import deref, object_properties, required_properties

MAX_NAME = 64
SEPARATOR = "__"  # between the environment and the tool in a qualified name: petstore__addPet
_ENV_PREFIX = 20  # characters of the environment's name a qualified name keeps
_INLINE_DEPTH = 3
_DROP_KEYS = frozenset({"$defs", "$schema", "$id", "readOnly", "writeOnly", "xml", "externalDocs", "deprecated"})
MULTIPART_BOUNDARY = "toolgrad-sim-boundary"


class ToolCallError(ValueError):
    """Tool-call arguments that cannot become a request (missing path parameter, bad type)."""


@dataclass(frozen=True, slots=True)
class ArgBinding:
    argument: str
    location: str  # path, query, header, cookie, body-field, body
    name: str  # the parameter or body property name
    style: str = "form"
    explode: bool = True


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    operation_id: str
    method: str
    path: str
    description: str
    parameters: JSONSchema
    bindings: tuple[ArgBinding, ...]
    media_type: str | None = None
    body_required: bool = False

    def openai(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def sanitize_name(text: str, limit: int = MAX_NAME) -> str:
    name = re.sub(r"[^a-zA-Z0-9_-]+", "_", text).strip("_") or "op"
    return name[:limit]


def unique_name(base: str, taken: set[str], limit: int = MAX_NAME) -> str:
    name = base[:limit]
    n = 2
    while name in taken:
        suffix = f"_{n}"
        name = base[: limit - len(suffix)] + suffix
        n += 1
    taken.add(name)
    return name


def inline(root: JSONSchema, schema: Any, depth: int = 0) -> Any:
    """A copy of a schema with ``$ref``s inlined to a few levels (deeper: a plain object),
    and annotations a model does not need dropped."""
    if isinstance(schema, list):
        return [inline(root, s, depth) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        if depth >= _INLINE_DEPTH:
            return {"type": "object"}
        return inline(root, deref(root, schema), depth + 1)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP_KEYS:
            continue
        if key in ("properties", "patternProperties", "$defs"):
            out[key] = {k: inline(root, v, depth) for k, v in value.items()}
        elif key in ("examples", "enum", "const", "default", "required", "type"):
            out[key] = value
        else:
            out[key] = inline(root, value, depth)
    return out


def _describe(op: Operation) -> str:
    """The tool's description: the summary and the description as one text, whitespace collapsed,
    said once (a description that repeats or extends the summary replaces it; a summary that
    holds the description stands alone) and joined with a single full stop."""
    summary = " ".join((op.summary or "").split())
    description = " ".join((op.description or "").split())
    if not summary or not description:
        text = summary or description or f"{op.method} {op.path}"
    elif _same_sentence(description, summary):
        text = description if len(description) >= len(summary) else summary
    elif description.lower().startswith(summary.rstrip(".").lower()):
        text = description
    elif description.rstrip(".").lower() in summary.lower():
        text = summary
    else:
        text = f"{summary.rstrip('.')}. {description}"
    return text[:1024]


def _same_sentence(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def tool_for(op: Operation, name: str) -> Tool:
    properties: dict[str, Any] = {}
    required: list[str] = []
    bindings: list[ArgBinding] = []
    for p in op.parameters:
        if p.location == "header" and p.name.lower() in ("content-type", "accept", "authorization"):
            continue
        schema = inline(p.schema, p.schema)
        if p.description and "description" not in schema:
            schema = {**schema, "description": p.description[:300]}
        properties[p.name] = schema
        if p.required:
            required.append(p.name)
        bindings.append(ArgBinding(p.name, p.location, p.name, p.style, p.explode))
    media = None
    rb = op.request_body
    if rb is not None and rb.content:
        media = sorted(rb.content, key=lambda m: (media_kind(m) != "json", media_kind(m) != "form", m))[0]
        body = rb.content[media]
        body_props = object_properties(body, body)
        flatten = body_props and not (set(body_props) & set(properties)) and media_kind(media) != "binary"
        if flatten:
            body_required = required_properties(body, body) if rb.required else []
            for prop, prop_schema in body_props.items():
                properties[prop] = inline(body, prop_schema)
                bindings.append(ArgBinding(prop, "body-field", prop))
                if prop in body_required:
                    required.append(prop)
        else:
            properties["body"] = inline(body, body)
            bindings.append(ArgBinding("body", "body", "body"))
            if rb.required:
                required.append("body")
    parameters: JSONSchema = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return Tool(name, op.operation_id, op.method, op.path, _describe(op), parameters, tuple(bindings), media,
                bool(rb and rb.required))


def tools_for(spec: Spec) -> list[Tool]:
    taken: set[str] = set()
    return [tool_for(op, unique_name(sanitize_name(op.operation_id), taken)) for op in spec.operations]


def qualified_tools(specs: Mapping[str, Spec]) -> dict[str, tuple[str, Tool]]:
    """Every operation of several environments in one flat namespace, as datasets name them:
    qualified name -> (environment, tool). Names are ``<env>__<tool>`` (the environment's name
    cut to 20 characters), unique and at most 64 characters; environments in name order, each
    one's tools in spec order."""
    taken: set[str] = set()
    out: dict[str, tuple[str, Tool]] = {}
    for env_name in sorted(specs):
        prefix = sanitize_name(env_name, _ENV_PREFIX)
        for tool in tools_for(specs[env_name]):
            out[unique_name(f"{prefix}{SEPARATOR}{tool.name}", taken, MAX_NAME)] = (env_name, tool)
    return out


def response_body(response: SimResponse) -> Any:
    """A tool call's result body: parsed JSON for a JSON response, else the text (None when empty)."""
    if not response.body:
        return None
    if "json" in response.content_type:
        try:
            return orjson.loads(response.body)
        except orjson.JSONDecodeError:
            pass
    return response.body.decode("utf-8", "replace")


def result_text(status: int, body: Any) -> str:
    """What a model is shown for a call that was made: ``{"status": ..., "body": ...}`` (the
    same bytes in datasets, ``toolgrad eval`` and MCP)."""
    return json_bytes({"status": status, "body": body}).decode()


def error_text(error: str) -> str:
    """What a model is shown for a call that could not be made: ``{"error": ...}``."""
    return json_bytes({"error": error}).decode()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


def build_request(tool: Tool, arguments: dict[str, Any], base_path: str = "") -> SimRequest:
    """The HTTP request a tool call stands for. Arguments the tool does not know are ignored;
    a missing path argument is a :class:`ToolCallError` (the call cannot be addressed)."""
    if not isinstance(arguments, dict):
        raise ToolCallError(f"arguments for {tool.name} must be a JSON object, got {type(arguments).__name__}")
    path = tool.path
    query: list[tuple[str, str]] = []
    headers: list[tuple[str, str]] = []
    cookies: list[str] = []
    body_fields: dict[str, Any] = {}
    body: Any = None
    for b in tool.bindings:
        if b.argument not in arguments or arguments[b.argument] is None:
            if b.location == "path":
                raise ToolCallError(f"{tool.name}: missing path argument {b.argument!r}")
            continue
        value = arguments[b.argument]
        if b.location == "path":
            text = ",".join(_text(v) for v in value) if isinstance(value, list) else _text(value)
            path = path.replace("{" + b.name + "}", quote(text, safe=""))
        elif b.location == "query":
            query.extend(_query_pairs(b, value))
        elif b.location == "header":
            headers.append((b.name.lower(), ",".join(map(_text, value)) if isinstance(value, list) else _text(value)))
        elif b.location == "cookie":
            cookies.append(f"{b.name}={_text(value)}")
        elif b.location == "body-field":
            body_fields[b.name] = value
        else:
            body = value
    if cookies:
        headers.append(("cookie", "; ".join(cookies)))
    if body is None and (body_fields or (tool.body_required and any(b.location == "body-field"
                                                                     for b in tool.bindings))):
        body = body_fields  # a required object body is sent even when every field is optional
    content = _encode_body(tool.media_type, body, headers) if body is not None and tool.media_type else b""
    return SimRequest(tool.method, base_path.rstrip("/") + path, tuple(query), tuple(headers), content)



def _encode_body(media_type: str, body: Any, headers: list[tuple[str, str]]) -> bytes:
    """``body`` encoded as ``media_type`` says, with its content-type header added to ``headers``."""
    media_type = sent_media(media_type)
    kind = media_kind(media_type)
    if kind == "form" and isinstance(body, dict):
        content = urlencode(_form_pairs(body)).encode()
    elif kind == "multipart" and isinstance(body, dict):
        content = _multipart(body)
        headers.append(("content-type", f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"))
    elif kind in ("text", "binary") and isinstance(body, str):
        content = body.encode()
    else:
        content = orjson.dumps(body)
    if kind != "multipart":
        headers.append(("content-type", media_type))
    return content

def _query_pairs(b: ArgBinding, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, list):
        if b.explode and b.style == "form":
            return [(b.name, _text(v)) for v in value]
        delim = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(b.style, ",")
        return [(b.name, delim.join(_text(v) for v in value))]
    if isinstance(value, dict):
        if b.style == "deepObject":
            return [(f"{b.name}[{k}]", _text(v)) for k, v in value.items()]
        if b.explode:
            return [(str(k), _text(v)) for k, v in value.items()]
        return [(b.name, ",".join(f"{k},{_text(v)}" for k, v in value.items()))]
    return [(b.name, _text(value))]


def _form_pairs(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A form's fields: a list of scalars as the field repeated, an object or a list holding
    objects in brackets (``metadata[plan]=pro``, ``items[0][price]=p_1``: OpenAPI's
    ``deepObject``, as Stripe reads forms), which the simulator decodes back."""
    pairs: list[tuple[str, str]] = []
    for k, v in body.items():
        if isinstance(v, list) and not any(isinstance(item, (dict, list)) for item in v):
            pairs.extend((k, _text(item)) for item in v)
        elif isinstance(v, (dict, list)):
            _bracketed(pairs, k, v)
        elif v is not None:
            pairs.append((k, _text(v)))
    return pairs


def _bracketed(pairs: list[tuple[str, str]], name: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, member in value.items():
            _bracketed(pairs, f"{name}[{key}]", member)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _bracketed(pairs, f"{name}[{i}]" if isinstance(item, (dict, list)) else f"{name}[]", item)
    elif value is not None:
        pairs.append((name, _text(value)))


def _multipart(body: dict[str, Any]) -> bytes:
    parts = []
    for k, v in _form_pairs(body):
        parts.append(
            f'--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        )
    return b"".join(parts) + f"--{MULTIPART_BOUNDARY}--\r\n".encode()

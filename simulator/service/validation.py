"""Request parsing and validation, compiled once per operation.

The hot path of the simulator: path matching, parameter decoding by OpenAPI style, body
parsing by media type and JSON Schema validation with validators compiled by jsonschema-rs.
openapi-core stays the reference for what "valid" means; ``tests/simulator/test_validation_agreement.py``
checks that our verdicts agree with it.

Everything here is pure: a :class:`ParsedRequest` or a list of :class:`Problem` comes out.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

import jsonschema_rs
import orjson

from simulator.canonical import join_pointer
from simulator.spec.model import JSONSchema, Operation, Parameter
from simulator.spec.navigation import array_items, deref, object_properties, primary_type

from .routing import PathTemplate

_INT = re.compile(r"[+-]?\d+")
_LONG_DIGITS = re.compile(rb"\d{19}")
_NUM = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request, and where."""

    location: str  # "path", "query", "header", "cookie", "body"
    name: str  # parameter name ("" for the body)
    pointer: str  # JSON pointer inside the value ("" for the whole value)
    message: str

    def to_json(self) -> dict[str, str]:
        return {"in": self.location, "name": self.name, "pointer": self.pointer, "message": self.message}


@dataclass(slots=True)
class ParsedRequest:
    operation: Operation
    path_params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    cookies: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    media_type: str | None = None

    def inputs(self) -> dict[str, Any]:
        """Every input value by name (body properties last), for echoing into responses."""
        out: dict[str, Any] = {}
        out.update(self.cookies)
        out.update(self.headers)
        out.update(self.query)
        out.update(self.path_params)
        if isinstance(self.body, dict):
            out.update(self.body)
        return out


class UnsupportedMediaType(Exception):
    def __init__(self, got: str, allowed: list[str]) -> None:
        self.got = got
        self.allowed = allowed
        super().__init__(f"content type {got or '(none)'!r} is not one of {allowed}")


def compile_schema(schema: JSONSchema) -> Any:
    """A validator that checks ``format`` too (``uuid``, ``date-time``, ``email``...), as
    openapi-core does: a request with a malformed uuid is invalid input, and a response must
    not echo one."""
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def _pointer(path: Any) -> str:
    return join_pointer("", *path)


def schema_problems(validator: Any, value: Any, location: str, name: str) -> list[Problem]:
    try:
        if validator.is_valid(value):
            return []
    except UnicodeEncodeError:  # a lone surrogate ("\udcff") from an in-process caller
        return [Problem(location, name, "", "the value is not valid Unicode (it holds a lone surrogate)")]
    out = []
    for err in validator.iter_errors(value):
        out.append(Problem(location, name, _pointer(err.instance_path), err.message))
        if len(out) >= 20:
            break
    return out


_MAX_DIGITS = 4300  # CPython's limit on int() of a string (sys.get_int_max_str_digits)


def coerce_scalar(value: str, root: JSONSchema, schema: JSONSchema) -> Any:
    """Turn a string from a URL or header into the type the schema asks for, when it parses.
    Under ``anyOf``/``oneOf``, the first branch the text fits (a branch whose ``enum`` lacks the
    value is passed over: Stripe's ``up_to`` is ``"inf"`` or an integer)."""
    schema = deref(root, schema)
    if len(value) > _MAX_DIGITS:  # int() refuses it; the schema check then says it is no number
        return value
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list) and "type" not in schema:
        for branch in branches:
            branch = deref(root, branch) if isinstance(branch, dict) else {}
            enum = branch.get("enum")
            typed = _coerced(value, root, branch)
            if typed is not _UNTYPED and (not isinstance(enum, list) or typed in enum):
                return typed
        return value
    typed = _coerced(value, root, schema)
    return value if typed is _UNTYPED else typed


_UNTYPED = object()


def _coerced(value: str, root: JSONSchema, schema: JSONSchema) -> Any:
    """``value`` as the first type of ``schema`` it parses as; _UNTYPED when none."""
    types = schema.get("type")
    candidates = types if isinstance(types, list) else [types] if types else [primary_type(root, schema)]
    for t in candidates:
        if t == "integer" and _INT.fullmatch(value):
            return int(value)
        if t == "number" and _NUM.fullmatch(value):
            return int(value) if _INT.fullmatch(value) else float(value)
        if t == "boolean" and value in ("true", "false"):
            return value == "true"
        if t == "null" and value in ("", "null"):
            return None
        if t == "string":
            return value
    return _UNTYPED


@dataclass(frozen=True, slots=True)
class _ParamPlan:
    param: Parameter
    kind: str  # "scalar", "array" or "object"
    item_schema: JSONSchema | None
    properties: dict[str, JSONSchema]

    @property
    def name(self) -> str:
        return self.param.name


_DELIMS = {"form": ",", "simple": ",", "spaceDelimited": " ", "pipeDelimited": "|"}


class CompiledOperation:
    """An operation with its path template, parameter plans and validators (compiled lazily,
    once, on first use, so a 5 MB spec starts fast)."""

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.template = PathTemplate.compile(op.path)
        self.plans = [self._plan(p) for p in op.parameters]

    @staticmethod
    def _plan(p: Parameter) -> _ParamPlan:
        root = p.schema
        ptype = primary_type(root, root)
        if ptype == "array":
            return _ParamPlan(p, "array", array_items(root, root), {})
        if ptype == "object":
            return _ParamPlan(p, "object", None, object_properties(root, root))
        return _ParamPlan(p, "scalar", None, {})

    @cached_property
    def param_validators(self) -> dict[tuple[str, str], Any]:
        return {(p.location, p.name): compile_schema(p.schema) for p in self.op.parameters}

    @cached_property
    def body_validators(self) -> dict[str, Any]:
        rb = self.op.request_body
        return {m: compile_schema(s) for m, s in rb.content.items()} if rb else {}

    def match(self, path: str) -> dict[str, str] | None:
        return self.template.match(path)

    # -- decoding ---------------------------------------------------------------------------

    def _decode(self, plan: _ParamPlan, raw: list[str], pairs: list[tuple[str, str]]) -> Any:
        root = plan.param.schema
        if plan.kind == "array":
            items = plan.item_schema or {}
            values = raw
            if not plan.param.explode or plan.param.location in ("path", "header"):
                delim = _DELIMS.get(plan.param.style, ",")
                values = [v for chunk in raw for v in (chunk.split(delim) if chunk else [])]
            return [coerce_scalar(v, root, items) for v in values]
        if plan.kind == "object":
            obj: dict[str, Any] = {}
            if plan.param.style == "deepObject":
                prefix = plan.name + "["
                for k, v in pairs:
                    if k.startswith(prefix) and k.endswith("]"):
                        key = k[len(prefix):-1]
                        obj[key] = coerce_scalar(v, root, plan.properties.get(key, {}))
                return obj
            if plan.param.explode and plan.param.location == "query":
                for k, v in pairs:
                    if k in plan.properties:
                        obj[k] = coerce_scalar(v, root, plan.properties[k])
                return obj
            parts = raw[0].split(",") if raw else []
            for k, v in zip(parts[::2], parts[1::2], strict=False):
                obj[k] = coerce_scalar(v, root, plan.properties.get(k, {}))
            return obj
        return coerce_scalar(raw[-1], root, root)

    def _present(self, plan: _ParamPlan, multi: dict[str, list[str]], pairs: list[tuple[str, str]]) -> bool:
        if plan.name in multi:
            return True
        if plan.kind == "object" and plan.param.location == "query":
            if plan.param.style == "deepObject":
                return any(k.startswith(plan.name + "[") for k, _ in pairs)
            if plan.param.explode:
                return any(k in plan.properties for k, _ in pairs)
        return False

    def parse(
        self,
        path_values: dict[str, str],
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
    ) -> ParsedRequest | list[Problem]:
        """Decode and validate; raises :class:`UnsupportedMediaType` for a wrong content type."""
        parsed = ParsedRequest(self.op)
        problems: list[Problem] = []
        qmulti: dict[str, list[str]] = {}
        for k, v in query:
            qmulti.setdefault(k, []).append(v)
        cookies: dict[str, list[str]] = {}
        if "cookie" in headers:
            for part in headers["cookie"].split(";"):
                if "=" in part:
                    k, v = part.strip().split("=", 1)
                    cookies.setdefault(k, []).append(v)
        validators = self.param_validators
        for plan in self.plans:
            loc, name = plan.param.location, plan.name
            if loc == "path":
                present, target = name in path_values, parsed.path_params
                raw = [path_values[name]] if present else []
            elif loc == "query":
                present, target = self._present(plan, qmulti, query), parsed.query
                raw = qmulti.get(name, [])
                if plan.kind == "array" and not raw:  # expand[]=a&expand[]=b, expand[0]=a (Stripe, Rails, PHP)
                    raw = bracketed_items(query, name)
                    present = present or bool(raw)
            elif loc == "header":
                lname = name.lower()
                present, target = lname in headers, parsed.headers
                raw = [headers[lname]] if present else []
            else:
                present, target = name in cookies, parsed.cookies
                raw = cookies.get(name, [])
            if not present:
                if plan.param.required:
                    problems.append(Problem(loc, name, "", f"required {loc} parameter {name!r} is missing"))
                continue
            value = self._decode(plan, raw, query)
            problems.extend(schema_problems(validators[(loc, name)], value, loc, name))
            target[name] = value
        problems.extend(self._parse_body(parsed, headers, body))
        return problems if problems else parsed

    def _parse_body(self, parsed: ParsedRequest, headers: dict[str, str], body: bytes) -> list[Problem]:
        rb = self.op.request_body
        if rb is None:
            return []
        ctype = headers.get("content-type", "")
        if not body and not ctype:
            if rb.required:
                return [Problem("body", "", "", "a request body is required")]
            return []
        media = match_media(ctype, list(rb.content))
        if media is None:
            raise UnsupportedMediaType(ctype.split(";")[0].strip(), list(rb.content))
        parsed.media_type = media
        schema = rb.content[media]
        kind = media_kind(media)
        try:
            if kind == "json":
                if not body:
                    if rb.required:
                        return [Problem("body", "", "", "a request body is required")]
                    return []
                value: Any = parse_json(body)
            elif kind == "form":
                value = decode_form(parse_qsl(body.decode("utf-8"), keep_blank_values=True), schema)
            elif kind == "multipart":
                value = decode_form(parse_multipart(ctype, body), schema)
            else:
                value = body.decode("utf-8", "replace")
        except (ValueError, UnicodeDecodeError) as exc:  # orjson's and json's decode errors
            return [Problem("body", "", "", f"the body is not valid {kind}: {exc}")]
        parsed.body = value
        return schema_problems(self.body_validators[media], value, "body", "")


def parse_json(body: bytes) -> Any:
    """orjson, except where the text has an integer of 19+ digits: orjson reads one beyond 64
    bits as a float (``-9223372036854775809`` -> ``-9.223372036854776e18``), the standard
    library exactly, and validation must see the number the client sent."""
    if _LONG_DIGITS.search(body) is None:
        return orjson.loads(body)
    orjson.loads(body)  # syntax and nesting depth (orjson stops at 1,024 levels; json would recurse)
    return json.loads(body)


_RANGES = {"*/*": "application/json", "application/*": "application/json", "text/*": "text/plain"}


def sent_media(media: str) -> str:
    """The ``Content-Type`` a body documented under ``media`` is sent with: ``media``, or for a
    media range (``*/*`` is for ``Accept``; a message names one type) the type of what is sent."""
    return _RANGES.get(media.lower(), media)


def media_kind(media: str) -> str:
    media = media.lower()
    if media == "application/x-www-form-urlencoded":
        return "form"
    if media.startswith("multipart/"):
        return "multipart"
    if "json" in media or media == "*/*":
        return "json"
    if media.startswith("text/"):
        return "text"
    return "binary"


def match_media(content_type: str, declared: list[str]) -> str | None:
    """The declared media type a request's Content-Type satisfies (exact, then wildcards)."""
    ctype = content_type.split(";")[0].strip().lower()
    if not ctype:
        # no header: accept when JSON is declared (clients often omit it)
        for m in declared:
            if media_kind(m) == "json":
                return m
        return None
    lowered = {m.lower(): m for m in declared}
    if ctype in lowered:
        return lowered[ctype]
    major = ctype.split("/")[0]
    for pattern in (f"{major}/*", "*/*"):
        if pattern in lowered:
            return lowered[pattern]
    return None


def bracketed_items(pairs: list[tuple[str, str]], name: str) -> list[str]:
    """The values of array ``name`` sent as ``name[]=a&name[]=b`` or ``name[0]=a&name[1]=b``
    (one bracket level, read as :func:`decode_form` reads a form's: ``[]`` appends, indexes
    order)."""
    items = _Indexed()
    for key, value in pairs:
        path = _bracket_path(key)
        if path is not None and path[0] == name and len(path[1]) == 1 and (not path[1][0] or path[1][0].isdigit()):
            items[path[1][0] or str(len(items))] = value
    finished: list[str] = _finished(items)
    return finished


def decode_form(pairs: list[tuple[str, str]], schema: JSONSchema) -> dict[str, Any]:
    """A form's fields as the body schema types them. A repeated field of an array property is
    its items; a field named with brackets is a member of a nested object or array, as Stripe,
    Rails and PHP write them and OpenAPI's ``deepObject`` style describes (``metadata[plan]=pro``,
    ``address[city]=Oslo``, ``expand[]=customer``, ``items[0][price]=p_1``), unless the schema
    has a property of that very name."""
    props = object_properties(schema, schema)
    out: dict[str, Any] = {}
    nested = False
    for k, v in pairs:
        path = None if k in props else _bracket_path(k)
        if path is not None:
            _put_nested(out, schema, props, path, v)
            nested = True
            continue
        prop = props.get(k, {})
        if primary_type(schema, prop) == "array":
            listed = out.get(k)
            if listed is None and v == "" and _empty_text_branch(schema, prop):
                out[k] = ""  # Stripe's `discounts=`: the "" that unsets the list, not a list of one ""
                continue
            if not isinstance(listed, list):
                listed = out[k] = [] if listed is None else [listed]
            listed.append(coerce_scalar(v, schema, array_items(schema, prop) or {}))
        else:
            out[k] = coerce_scalar(v, schema, prop)
    return {k: _finished(v) for k, v in out.items()} if nested else out


def _side(root: JSONSchema, resolved: JSONSchema, kind: str) -> JSONSchema:
    """``resolved``, or for an ``anyOf``/``oneOf`` wrapper (Stripe's [a list, ""], [a map, ""])
    its first branch of JSON type ``kind``: the one that says what a bracketed form field names."""
    branches = resolved.get("anyOf") or resolved.get("oneOf")
    if "type" in resolved or not isinstance(branches, list):
        return resolved
    for branch in branches:
        branch = deref(root, branch) if isinstance(branch, dict) else {}
        if primary_type(root, branch) == kind:
            return branch
    return resolved


def _empty_text_branch(root: JSONSchema, schema: JSONSchema) -> bool:
    """Whether an array property is also, in a branch of its own, a string that may be empty:
    Stripe's ``anyOf [array, enum [""]]``, where an empty field means "unset"."""
    resolved = deref(root, schema)
    for branch in resolved.get("anyOf") or resolved.get("oneOf") or ():
        branch = deref(root, branch) if isinstance(branch, dict) else {}
        enum = branch.get("enum")
        if primary_type(root, branch) != "array" and _coerced("", root, branch) == "" and \
                (not isinstance(enum, list) or "" in enum):
            return True
    return False


_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_FORM_DEPTH = 8  # bracket levels read as nesting; a deeper name is kept as a plain field name


class _Indexed(dict[str, Any]):
    """An array being filled from bracketed form fields: index text -> item (``[]`` appends)."""


def _bracket_path(key: str) -> tuple[str, list[str]] | None:
    """(``name``, its bracket segments) for ``name[a][b]``; None for a plain or malformed name."""
    head, bracket, rest = key.partition("[")
    if not bracket or not head:
        return None
    segments = _BRACKET.findall(bracket + rest)
    if not segments or len(segments) > _FORM_DEPTH or "".join(f"[{s}]" for s in segments) != bracket + rest:
        return None
    return head, segments


def _put_nested(out: dict[str, Any], root: JSONSchema, props: dict[str, JSONSchema], path: tuple[str, list[str]],
                text: str) -> None:
    """Set the member ``path`` names to ``text``, typed by the schema along the way."""
    name, segments = path
    node: dict[str, Any] = out
    key: str = name
    schema: JSONSchema = props.get(name, {})
    for segment in segments:
        resolved = deref(root, schema)
        if primary_type(root, resolved) == "array":
            child = node.get(key)
            if not isinstance(child, _Indexed):
                child = node[key] = _Indexed()
            node, key = child, segment if segment else str(len(child))
            schema = array_items(root, _side(root, resolved, "array")) or {}
        else:
            child = node.get(key)
            if not isinstance(child, dict) or isinstance(child, _Indexed):
                child = node[key] = {}
            extra = _side(root, resolved, "object").get("additionalProperties")
            node, key = child, segment
            schema = object_properties(root, resolved).get(segment) or (extra if isinstance(extra, dict) else {})
    node[key] = coerce_scalar(text, root, schema)


def _finished(value: Any) -> Any:
    """``value`` with each array being filled made a list, in index order (numbers first)."""
    if isinstance(value, _Indexed):
        # numeric order without int(), which refuses texts past 4,300 digits
        order = sorted(value, key=lambda k: (0, len(k.lstrip("0")), k.lstrip("0"), k) if k.isdigit() else (1, 0, k, k))
        return [_finished(value[k]) for k in order]
    if isinstance(value, dict):
        return {k: _finished(v) for k, v in value.items()}
    return value


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    pairs: list[tuple[str, str]] = []
    if not message.is_multipart():
        raise UnicodeDecodeError("multipart", body[:1], 0, 1, "not a multipart body")
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if name:
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload or "")
            pairs.append((str(name), text))
    return pairs

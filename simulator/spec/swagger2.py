"""Swagger 2.0 documents -> :class:`~simulator.spec.model.Operation` records, as OpenAPI 3.x would have them.

The document is read in place (so every pointer in an error is one into the file the user has);
only what differs from 3.x is here:

- a ``body`` parameter becomes the request body, one entry per ``consumes`` media type
  (the operation's, else the document's, else ``application/json``);
- ``formData`` parameters become one object schema under ``multipart/form-data`` (any ``file``
  parameter, or ``consumes`` says so) or ``application/x-www-form-urlencoded``;
- ``produces`` gives the response media types (default ``application/json``);
- parameter and header objects carry their schema inline (``type``, ``items``...);
  ``collectionFormat`` becomes ``style``/``explode``;
- ``securityDefinitions`` become 3.x security schemes (basic -> http/basic, oauth2 flows renamed).
"""

from __future__ import annotations

from typing import Any

from .model import JSONSchema, Parameter, RequestBody, ResponseSpec
from .openapi3 import (
    OpenAPI3Builder,
    Unservable,
    check_name_and_location,
    default_style,
    mapping,
    normalise_base_path,
    plain,
    text,
)
from .refs import Location, RefError, RemoteRefRefused

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# keys of a 2.0 parameter / header / items object that are JSON Schema
_SCHEMA_KEYS = (
    "type", "format", "items", "default", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "enum", "multipleOf",
    "x-nullable", "example", "x-example",
)
# collectionFormat -> (style, explode) for query parameters
_QUERY_STYLES = {
    "csv": ("form", False),
    "multi": ("form", True),
    "ssv": ("spaceDelimited", False),
    "pipes": ("pipeDelimited", False),
    "tsv": ("form", False),  # no 3.x equivalent; read as csv
}
_FLOWS = {"implicit": "implicit", "password": "password", "application": "clientCredentials",
          "accessCode": "authorizationCode"}


def inline_schema(node: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema part of a 2.0 parameter, header or items object."""
    schema = {key: node[key] for key in _SCHEMA_KEYS if key in node}
    if "x-example" in schema and "example" not in schema:
        schema["example"] = schema.pop("x-example")
    return schema


class Swagger2Builder(OpenAPI3Builder):
    """Builds the operations of a Swagger 2.0 document."""

    def _media_types(self, op: dict[str, Any], key: str) -> list[str]:
        for owner in (op, self.root):
            value = owner.get(key)
            if isinstance(value, list) and any(isinstance(v, str) for v in value):
                return [v for v in value if isinstance(v, str)]
        return ["application/json"]

    def inputs(self, raw: list[tuple[dict[str, Any], Location]], op: dict[str, Any],
               op_at: Location) -> tuple[tuple[Parameter, ...], RequestBody | None]:
        params: list[Parameter] = []
        body: RequestBody | None = None
        form: list[tuple[dict[str, Any], Location]] = []
        for node, at in raw:
            where = node.get("in")
            if where == "body":
                if "schema" not in node:
                    raise Unservable(f"body parameter {node.get('name')!r} has no 'schema'", at)
                schema = self.schema(node["schema"], at.child("schema"), "request")
                content = dict.fromkeys(self._media_types(op, "consumes"), schema)
                body = RequestBody(node.get("required") is True, content, text(node.get("description")))
            elif where == "formData":
                form.append((node, at))
            else:
                params.append(self.parameter(node, at))
        if body is None and form:
            body = self.form_body(form, op)
        return tuple(params), body

    def parameter(self, node: dict[str, Any], at: Location) -> Parameter:
        name, location = check_name_and_location(node, at)
        if "schema" in node:  # not 2.0, but unambiguous
            schema = self.schema(node["schema"], at.child("schema"), "request")
        elif "type" in node:
            schema = self.schema(inline_schema(node), at, "request")
        else:
            raise Unservable(f"parameter {name!r} has neither 'type' nor 'schema'", at)
        style, explode = default_style(location), location not in ("path", "header")
        if node.get("type") == "array":
            fmt = node.get("collectionFormat", "csv")
            if location in ("query", "cookie"):
                style, explode = _QUERY_STYLES.get(fmt, ("form", False))
            else:
                explode = False
        required = True if location == "path" else node.get("required") is True
        return Parameter(name, location, required, schema, style, explode, text(node.get("description")))

    def form_body(self, form: list[tuple[dict[str, Any], Location]], op: dict[str, Any]) -> RequestBody:
        properties: list[tuple[str, Any, Location]] = []
        required: list[str] = []
        has_file = False
        for node, at in form:
            name = node.get("name")
            if not isinstance(name, str) or not name:
                raise Unservable("the form parameter has no 'name'", at)
            has_file = has_file or node.get("type") == "file"
            properties.append((name, inline_schema(node), at))
            if node.get("required") is True and name not in required:
                required.append(name)
        try:
            schema = self.schemas.convert_object(properties, required, "request")
        except RemoteRefRefused:
            raise
        except RefError as exc:
            raise Unservable(exc.message, exc.where or form[0][1]) from None
        consumes = [c for c in self._media_types(op, "consumes") if c.split(";")[0].strip() in FORM_TYPES]
        media = ["multipart/form-data"] if has_file else consumes or ["application/x-www-form-urlencoded"]
        return RequestBody(bool(required), dict.fromkeys(media, schema))

    def response(self, status: str, node: dict[str, Any], at: Location, op: dict[str, Any]) -> ResponseSpec:
        content: dict[str, JSONSchema] = {}
        if "schema" in node:
            schema = self.schema(node["schema"], at.child("schema"), "response")
            content = dict.fromkeys(self._media_types(op, "produces"), schema)
        headers: dict[str, tuple[bool, JSONSchema]] = {}
        for name, header in mapping(node.get("headers")).items():
            if isinstance(name, str) and isinstance(header, dict) and name.lower() != "content-type":
                headers[name] = (False, self.schema(inline_schema(header), at.child("headers", name), "response"))
        return ResponseSpec(status, content, headers, text(node.get("description")))

    def base_path(self) -> str:
        return normalise_base_path(text(self.root.get("basePath")))

    def security_schemes(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, node in mapping(self.root.get("securityDefinitions")).items():
            if isinstance(node, dict):
                out[str(name)] = convert_security_scheme(node)
        return out


def convert_security_scheme(node: dict[str, Any]) -> dict[str, Any]:
    """A 2.0 security definition as a 3.x security scheme."""
    kind = node.get("type")
    scheme: dict[str, Any]
    if kind == "basic":
        scheme = {"type": "http", "scheme": "basic"}
    elif kind == "oauth2":
        flow: dict[str, Any] = {}
        for key in ("authorizationUrl", "tokenUrl"):
            if isinstance(node.get(key), str):
                flow[key] = node[key]
        flow["scopes"] = plain(node.get("scopes")) if isinstance(node.get("scopes"), dict) else {}
        scheme = {"type": "oauth2", "flows": {_FLOWS.get(str(node.get("flow")), "implicit"): flow}}
    else:
        scheme = {k: plain(v) for k, v in node.items() if k in ("type", "name", "in")}
    if isinstance(node.get("description"), str):
        scheme["description"] = node["description"]
    return scheme

"""OpenAPI 3.0 / 3.1 documents -> :class:`~simulator.spec.model.Operation` records.

Path-item and operation parameters are merged (the operation's win by ``(name, in)``) and given
their default style; request bodies, responses and response headers are dereferenced and their
schemas converted per direction; security and operation ids are settled. An operation that cannot
be served (a ``$ref`` that does not resolve, a parameter with neither schema nor content, ...) is
set aside as a :class:`~simulator.spec.model.SkippedOperation` with the reason, and the rest still load.
:class:`~simulator.spec.swagger2.Swagger2Builder` reuses all of this for Swagger 2.0.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from simulator.canonical import join_pointer
from simulator.spec.jsonschema.convert import Direction, SchemaConverter

from .model import (
    JSONSchema,
    Operation,
    Parameter,
    ParamLocation,
    RequestBody,
    ResponseSpec,
    SkippedOperation,
)
from .refs import Documents, Location, RefError, RemoteRefRefused

log = logging.getLogger(__name__)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
LOCATIONS = ("path", "query", "header", "cookie")
# OpenAPI 3.x: header parameters with these names "SHALL be ignored"
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
_TEMPLATE_VAR = re.compile(r"\{([^{}/]+)\}")

Security = tuple[dict[str, tuple[str, ...]], ...]


class Unservable(Exception):
    """Why one operation cannot be served, and where (in whichever document the problem sits)."""

    def __init__(self, reason: str, at: Location) -> None:
        super().__init__(reason)
        self.reason = reason
        self.at = at


@dataclass(slots=True)
class OperationDraft:
    """An operation before ids are settled (ids depend on every other operation)."""

    method: str
    path: str
    pointer: str
    given_id: str | None
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    request_body: RequestBody | None = None
    responses: tuple[ResponseSpec, ...] = ()
    security: Security = ()
    deprecated: bool = False


@dataclass(slots=True)
class Built:
    """Everything a spec document yields besides its provenance."""

    title: str
    version: str
    description: str
    base_path: str
    operations: tuple[Operation, ...]
    skipped: tuple[SkippedOperation, ...]
    security_schemes: dict[str, dict[str, Any]] = field(default_factory=dict)


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is an object, else an empty one (the spec got it wrong; carry on)."""
    return value if isinstance(value, dict) else {}


def plain(value: Any) -> Any:
    """A JSON value with ``x-*`` extension keys removed at every level."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not (isinstance(k, str) and k.startswith("x-"))}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def default_style(location: str) -> str:
    return "simple" if location in ("path", "header") else "form"


class OpenAPI3Builder:
    """Builds the operations of an OpenAPI 3.0/3.1 document; subclassed for Swagger 2.0."""

    def __init__(self, documents: Documents) -> None:
        self.docs = documents
        self.root: dict[str, Any] = documents.root.data
        self.schemas = SchemaConverter(documents)

    # -- the whole document -------------------------------------------------------------------

    def build(self) -> Built:
        drafts: list[OperationDraft] = []
        skipped: list[SkippedOperation] = []
        for path, item in self.root["paths"].items():
            if not isinstance(path, str) or path.startswith("x-"):
                continue
            item_ptr = join_pointer("/paths", path)
            try:
                node, item_at = self.deref(item, Location("", item_ptr))
                if not isinstance(node, dict):
                    raise Unservable("the path item is not an object", item_at)
            except Unservable as exc:
                skipped.append(self._skip("*", path, item_ptr, exc))
                continue
            for method, op in node.items():
                if method not in METHODS:
                    continue
                op_ptr = join_pointer(item_ptr, method)
                try:
                    drafts.append(self.operation(path, method, op, node, item_at, op_ptr))
                except Unservable as exc:
                    skipped.append(self._skip(method.upper(), path, op_ptr, exc))
        self.schemas.finish()
        info = mapping(self.root.get("info"))
        return Built(
            title=text(info.get("title")),
            version=str(info.get("version", "")) if info.get("version") is not None else "",
            description=text(info.get("description")),
            base_path=self.base_path(),
            operations=assign_ids(drafts),
            skipped=tuple(skipped),
            security_schemes=self.security_schemes(),
        )

    @staticmethod
    def _skip(method: str, path: str, op_ptr: str, exc: Unservable) -> SkippedOperation:
        if exc.at.doc:
            return SkippedOperation(method, path, op_ptr, f"{exc.reason} (in {exc.at.render()})")
        return SkippedOperation(method, path, exc.at.pointer, exc.reason)

    def base_path(self) -> str:
        servers = self.root.get("servers")
        if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
            return ""
        url = text(servers[0].get("url"))
        variables = mapping(servers[0].get("variables"))

        def substitute(m: re.Match[str]) -> str:
            var = variables.get(m.group(1))
            return str(var.get("default", "")) if isinstance(var, dict) else ""

        url = _TEMPLATE_VAR.sub(substitute, url)
        path = urlsplit(url).path if "://" in url or url.startswith("//") else url.split("?", 1)[0]
        return normalise_base_path(path)

    def security_schemes(self) -> dict[str, dict[str, Any]]:
        schemes = mapping(mapping(self.root.get("components")).get("securitySchemes"))
        out: dict[str, dict[str, Any]] = {}
        for name, node in schemes.items():
            try:
                scheme, _ = self.deref(node, Location("", join_pointer("/components/securitySchemes", name)))
            except Unservable as exc:
                log.warning("security scheme %r left out: %s", name, exc.reason)
                continue
            if isinstance(scheme, dict):
                out[str(name)] = plain(scheme)
        return out

    # -- one operation --------------------------------------------------------------------------

    def operation(self, path: str, method: str, op: Any, item: dict[str, Any], item_at: Location,
                  op_ptr: str) -> OperationDraft:
        op_at = item_at.child(method)
        if not isinstance(op, dict):
            raise Unservable("the operation is not an object", op_at)
        raw = self.merged_parameters(item, item_at, op, op_at)
        parameters, body = self.inputs(raw, op, op_at)
        given = op.get("operationId")
        tags = op["tags"] if isinstance(op.get("tags"), list) else []
        return OperationDraft(
            method=method.upper(),
            path=path,
            pointer=op_ptr,
            given_id=given.strip() if isinstance(given, str) and given.strip() else None,
            summary=text(op.get("summary")),
            description=text(op.get("description")),
            tags=tuple(t for t in tags if isinstance(t, str)),
            parameters=fit_path_template(path, parameters),
            request_body=body,
            responses=self.responses(op, op_at),
            security=self.security(op),
            deprecated=op.get("deprecated") is True,
        )

    def merged_parameters(self, item: dict[str, Any], item_at: Location, op: dict[str, Any],
                          op_at: Location) -> list[tuple[dict[str, Any], Location]]:
        """Path-item then operation parameters, dereferenced; the operation's win by (name, in)."""
        merged: dict[tuple[Any, Any], tuple[dict[str, Any], Location]] = {}
        for owner, owner_at in ((item, item_at), (op, op_at)):
            params = owner.get("parameters")
            if params is None:
                continue
            if not isinstance(params, list):
                raise Unservable("'parameters' is not a list", owner_at.child("parameters"))
            for i, param in enumerate(params):
                node, at = self.deref(param, owner_at.child("parameters", i))
                if not isinstance(node, dict):
                    raise Unservable("the parameter is not an object", at)
                merged[(node.get("name"), node.get("in"))] = (node, at)
        return list(merged.values())

    def inputs(self, raw: list[tuple[dict[str, Any], Location]], op: dict[str, Any],
               op_at: Location) -> tuple[tuple[Parameter, ...], RequestBody | None]:
        params = [p for p in (self.parameter(node, at) for node, at in raw) if p is not None]
        return tuple(params), self.request_body(op, op_at)

    def parameter(self, node: dict[str, Any], at: Location) -> Parameter | None:
        name, location = check_name_and_location(node, at)
        if location == "header" and name.lower() in _IGNORED_HEADERS:
            return None
        if "schema" in node:
            schema = self.schema(node["schema"], at.child("schema"), "request")
        elif isinstance(node.get("content"), dict) and node["content"]:
            # a parameter serialised as a media type: validated by its schema, decoded by style
            media, obj = next(iter(node["content"].items()))
            schema = self.schema(obj.get("schema", {}) if isinstance(obj, dict) else {},
                                 at.child("content", media, "schema"), "request")
        else:
            raise Unservable(f"parameter {name!r} has neither 'schema' nor 'content'", at)
        style = node["style"] if isinstance(node.get("style"), str) else default_style(location)
        explode = node["explode"] if isinstance(node.get("explode"), bool) else style == "form"
        required = True if location == "path" else node.get("required") is True
        return Parameter(name, location, required, schema, style, explode, text(node.get("description")))

    def request_body(self, op: dict[str, Any], op_at: Location) -> RequestBody | None:
        if op.get("requestBody") is None:
            return None
        node, at = self.deref(op["requestBody"], op_at.child("requestBody"))
        if not isinstance(node, dict):
            raise Unservable("the request body is not an object", at)
        content = node.get("content") or {}
        if not isinstance(content, dict):
            raise Unservable("the request body's 'content' is not an object", at.child("content"))
        return RequestBody(node.get("required") is True, self.media(content, at.child("content"), "request"),
                           text(node.get("description")))

    def responses(self, op: dict[str, Any], op_at: Location) -> tuple[ResponseSpec, ...]:
        responses = op.get("responses")
        if responses is None:
            return ()
        if not isinstance(responses, dict):
            raise Unservable("'responses' is not an object", op_at.child("responses"))
        out = []
        for status, raw in responses.items():
            if str(status).startswith("x-"):
                continue
            node, at = self.deref(raw, op_at.child("responses", str(status)))
            if not isinstance(node, dict):
                raise Unservable("the response is not an object", at)
            out.append(self.response(str(status), node, at, op))
        return tuple(out)

    def response(self, status: str, node: dict[str, Any], at: Location, op: dict[str, Any]) -> ResponseSpec:
        content = node.get("content") or {}
        if not isinstance(content, dict):
            raise Unservable("the response's 'content' is not an object", at.child("content"))
        headers: dict[str, tuple[bool, JSONSchema]] = {}
        for name, raw in mapping(node.get("headers")).items():
            if not isinstance(name, str) or name.lower() == "content-type":
                continue
            header, header_at = self.deref(raw, at.child("headers", name))
            if isinstance(header, dict):
                headers[name] = (header.get("required") is True, self.header_schema(header, header_at))
        return ResponseSpec(status, self.media(content, at.child("content"), "response"), headers,
                            text(node.get("description")))

    def header_schema(self, header: dict[str, Any], at: Location) -> JSONSchema:
        if "schema" in header:
            return self.schema(header["schema"], at.child("schema"), "response")
        content = header.get("content")
        if isinstance(content, dict) and content:
            media, obj = next(iter(content.items()))
            if isinstance(obj, dict) and "schema" in obj:
                return self.schema(obj["schema"], at.child("content", media, "schema"), "response")
        return {}

    def media(self, content: dict[str, Any], at: Location, direction: Direction) -> dict[str, JSONSchema]:
        out: dict[str, JSONSchema] = {}
        for media, obj in content.items():
            if not isinstance(media, str):
                continue
            schema = obj.get("schema") if isinstance(obj, dict) else None
            out[media] = {} if schema is None else self.schema(schema, at.child(media, "schema"), direction)
        return out

    def security(self, op: dict[str, Any]) -> Security:
        requirements = op["security"] if "security" in op else self.root.get("security")
        if not isinstance(requirements, list):
            return ()
        out = []
        for requirement in requirements:
            if isinstance(requirement, dict):
                out.append({
                    str(name): tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else ()
                    for name, scopes in requirement.items()
                })
        return tuple(out)

    # -- references and schemas -------------------------------------------------------------------

    def deref(self, node: Any, at: Location) -> tuple[Any, Location]:
        """``node`` with its ``$ref`` chain followed, and where it was found."""
        seen: set[Location] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            try:
                node, target = self.docs.lookup(ref, at.doc)
            except RemoteRefRefused as exc:
                raise exc.locate(at.doc, at.pointer) from None
            except RefError as exc:
                raise Unservable(exc.message, at) from None
            if target in seen or len(seen) > 32:
                raise Unservable(f"$ref cycle through {ref!r}", at)
            seen.add(target)
            at = target
        return node, at

    def schema(self, node: Any, at: Location, direction: Direction) -> JSONSchema:
        try:
            return self.schemas.convert(node, at.doc, at.pointer, direction)
        except RemoteRefRefused:
            raise
        except RefError as exc:
            raise Unservable(exc.message, exc.where or at) from None


def check_name_and_location(node: dict[str, Any], at: Location) -> tuple[str, ParamLocation]:
    name, location = node.get("name"), node.get("in")
    if not isinstance(name, str) or not name:
        raise Unservable("the parameter has no 'name'", at)
    if location not in LOCATIONS:
        raise Unservable(f"parameter {name!r} has an unknown location 'in: {location}'", at)
    return name, cast(ParamLocation, location)


def fit_path_template(path: str, params: tuple[Parameter, ...]) -> tuple[Parameter, ...]:
    """Path parameters made to match the template: declared ones the template lacks are dropped
    (no request could carry them); template variables nobody declared become required strings."""
    variables = _TEMPLATE_VAR.findall(path)
    out = [p for p in params if p.location != "path" or p.name in variables]
    declared = {p.name for p in out if p.location == "path"}
    for name in variables:
        if name not in declared:
            log.debug("%s: path variable {%s} is not declared; treating it as a string", path, name)
            out.append(Parameter(name, "path", True, {"type": "string"}, "simple", False))
            declared.add(name)
    return tuple(out)


def normalise_base_path(path: str) -> str:
    path = path.strip()
    if path in ("", ".", "/", "./"):
        return ""
    if not path.startswith("/"):
        path = "/" + path.removeprefix("./")
    return path.rstrip("/")


def derived_id(method: str, path: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"
    return f"{method.lower()}_{slug}"


def unique_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def assign_ids(drafts: list[OperationDraft]) -> tuple[Operation, ...]:
    """Operations with unique ids: the spec's own first (in document order; repeats get ``_2``...),
    then derived ``<method>_<path>`` ones for operations without."""
    taken: set[str] = set()
    ids: list[str | None] = [unique_name(d.given_id, taken) if d.given_id else None for d in drafts]
    out = []
    for d, given in zip(drafts, ids, strict=True):
        op_id = given or unique_name(derived_id(d.method, d.path), taken)
        out.append(Operation(
            operation_id=op_id, method=d.method, path=d.path, pointer=d.pointer, summary=d.summary,
            description=d.description, tags=d.tags, parameters=d.parameters, request_body=d.request_body,
            responses=d.responses, security=d.security, deprecated=d.deprecated,
        ))
    return tuple(out)

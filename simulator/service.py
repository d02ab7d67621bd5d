"""The simulator: one environment, many sessions, answering :class:`SimRequest` objects.

This is the in-process API (no sockets) that the ASGI app, the generator and the certifier
share, so every path gives the same bytes. ``Simulator.handle`` never raises for client
input: bad input is a 4xx problem report; the control API lives under ``/_sim``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

import orjson

from .environment import Environment
from .handlers import NO_BODY, Conflict, Handlers, NotFound, Outcome, choose_media, documented
from .model import Operation, Spec
from .resources import ResourceModel, infer_resources
from .routing import Router
from .sandbox import DEFAULT_SESSION, SimRequest, SimResponse
from .schemas import primary_type
from .shaping import Shaper
from .state import Session, World, canonical_json, json_bytes
from .validation import CompiledOperation, Problem, UnsupportedMediaType, media_kind
from .writes import WriteRefused

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
CONTROL_PREFIX = "/_sim"
AUTH_MODES = ("off", "enforce")


def _json(status: int, body: Any, extra: tuple[tuple[str, str], ...] = (), media: str = "application/json") -> SimResponse:
    return SimResponse(status, (("content-type", media), *extra), json_bytes(body))


class Simulator:
    """A deterministic mock of one environment. Not thread-safe: one request at a time
    (the ASGI app runs handlers without awaiting in between)."""

    def __init__(self, env: Environment, *, auth: str = "off") -> None:
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {AUTH_MODES}, got {auth!r}")
        self.env = env
        self.auth = auth
        self.name = env.name
        self.seed = f"{env.spec.sha256}|{env.seed}"
        self.model: ResourceModel = infer_resources(env.spec, env.overrides)
        self.shaper = Shaper(env.epoch)
        self.world = World(self.seed, env.fixtures, self.shaper)
        self.handlers = Handlers(self.seed, self.world, self.shaper, env.epoch)
        self.base_path = env.spec.base_path.rstrip("/")
        self.compiled = [CompiledOperation(op) for op in env.spec.operations]
        self._produces = produced_media(env.spec)
        self._unrouted_media = document_media(env.spec) or PROBLEM_JSON
        self._router: Router[CompiledOperation] = Router()
        for c in self.compiled:
            self._router.add(c.op.path, c)
        self.sessions: dict[str, Session] = {}
        self.snapshots: dict[str, Session] = {}
        self._fingerprint = env.fingerprint()
        self._fingerprint["auth"] = auth

    # -- sessions -------------------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        return dict(self._fingerprint)

    def session(self, name: str = DEFAULT_SESSION) -> Session:
        found = self.sessions.get(name)
        if found is None:
            found = self.sessions[name] = Session()
        return found

    def snapshot(self, name: str = DEFAULT_SESSION) -> str:
        session = self.session(name)
        snap_id = session.state_hash()
        self.snapshots.setdefault(snap_id, session.clone())
        return snap_id

    def restore(self, snapshot_id: str, name: str = DEFAULT_SESSION) -> None:
        if snapshot_id not in self.snapshots:
            raise KeyError(snapshot_id)
        self.session(name).restore_from(self.snapshots[snapshot_id])

    def reset(self, name: str = DEFAULT_SESSION) -> None:
        self.sessions[name] = Session()

    def drop(self, name: str) -> None:
        self.sessions.pop(name, None)

    # -- requests -------------------------------------------------------------------------

    def handle(self, req: SimRequest, session: str = DEFAULT_SESSION) -> SimResponse:
        if req.path == CONTROL_PREFIX or req.path.startswith(CONTROL_PREFIX + "/"):
            return self._control(req, session)
        state = self.session(session)
        try:
            resp = self._mock(req, state)
        except Exception as exc:  # a simulator bug: say so, never a bare traceback to the client
            log.exception("simulator error on %s %s", req.method, req.path)
            resp = _json(500, {"type": "about:blank", "title": "Simulator error", "status": 500,
                               "detail": f"{type(exc).__name__}: {exc}"}, media=PROBLEM_JSON)
        state.log({
            "seq": state.journal_length(),
            "method": req.method,
            "path": req.path,
            "query": [list(p) for p in req.query],
            "body": req.body.decode("utf-8", "replace") if req.body else None,
            "status": resp.status,
            "response": resp.body.decode("utf-8", "replace") if resp.body else None,
            "state": state.state_hash(),
        })
        return resp

    def route(self, path: str, method: str = "") -> tuple[list[CompiledOperation], dict[str, str]] | None:
        """The operations at the most specific path template matching ``path`` that has
        ``method`` (else at the most specific match, which then answers 405), and the path
        parameter values."""
        if self.base_path and (path == self.base_path or path.startswith(self.base_path + "/")):
            path = path[len(self.base_path):] or "/"
        first: tuple[list[CompiledOperation], dict[str, str]] | None = None
        for route, values in self._router.matches(path):
            if not method or any(c.op.method == method for c in route.targets):
                return route.targets, values
            first = first or (route.targets, values)
        return first

    def _mock(self, req: SimRequest, session: Session) -> SimResponse:
        method = req.method.upper()
        found = self.route(req.path, method)
        if found is None:
            return self._problem(None, 404, "Not Found", f"no operation at path {req.path!r}", [])
        candidates, values = found
        compiled = next((c for c in candidates if c.op.method == method), None)
        if compiled is None:
            allowed = ", ".join(sorted(c.op.method for c in candidates))
            return self._problem(None, 405, "Method Not Allowed",
                                 f"{method} is not allowed on {candidates[0].op.path}; allowed: {allowed}",
                                 [], (("allow", allowed),))
        op = compiled.op
        headers = dict(req.headers)
        if self.auth == "enforce" and not self._authorised(op, headers, req.query):
            return self._problem(op, 401, "Unauthorized", "credentials required by the spec are missing",
                                 [], (("www-authenticate", self._challenge(op)),))
        try:
            parsed = compiled.parse(values, list(req.query), headers, req.body)
        except UnsupportedMediaType as exc:
            return self._problem(op, 415, "Unsupported Media Type", str(exc),
                                 [Problem("header", "content-type", "", str(exc))])
        if isinstance(parsed, list):
            status = 422 if all(p.location == "body" for p in parsed) and not _malformed(parsed) else 400
            status = _documented_input_status(op, status)
            return self._problem(op, status, "Request validation failed",
                                 f"{len(parsed)} problem(s) with the request", parsed)
        binding = self.model.bindings[op.operation_id]
        res = self.model.resources.get(binding.resource) if binding.resource else None
        try:
            outcome = self.handlers.handle(session, binding, res, parsed)
        except NotFound as exc:
            return self._problem(op, 404, "Not Found", exc.detail,
                                 [Problem("path", res.id_param or "", "", exc.detail)] if res else [])
        except Conflict as exc:
            return self._problem(op, 409, "Conflict", exc.detail,
                                 [Problem("path", res.id_param or "", "", exc.detail)] if res else [])
        except WriteRefused as exc:  # valid for the request schema, but not storable as sent
            field = exc.pointer.split("/")[1].replace("~1", "/").replace("~0", "~") if exc.pointer else ""
            return self._problem(op, _documented_input_status(op, 422), "The write cannot be stored as sent",
                                 f"field {field!r} ({exc.pointer}): {exc.reason}",
                                 [Problem("body", field, exc.pointer, exc.reason)])
        return self._render(op, outcome)

    def _render(self, op: Operation, outcome: Outcome, extra: tuple[tuple[str, str], ...] = ()) -> SimResponse:
        headers = list(extra)
        spec = documented(op, outcome.status)
        if spec is not None:
            for name, (required, schema) in sorted(spec.headers.items()):
                if required and name.lower() != "content-type":
                    value = self.shaper.generate(schema, schema, f"{self.seed}|header|{op.operation_id}|{name}", name)
                    headers.append((name.lower(), _header_text(value)))
        if outcome.body is NO_BODY:
            produced = self._produces.get(op.operation_id)
            if produced is not None:
                headers.insert(0, ("content-type", produced))
            return SimResponse(outcome.status, tuple(headers), b"")
        media = outcome.media_type or "application/json"
        kind = media_kind(media)
        if kind == "json":
            body = json_bytes(outcome.body)
        elif "xml" in media:
            body = _to_xml(outcome.body).encode()
        elif isinstance(outcome.body, str):
            body = outcome.body.encode()
        else:
            body = json_bytes(outcome.body)
        return SimResponse(outcome.status, (("content-type", media), *headers), body)

    def _problem(self, op: Operation | None, status: int, title: str, detail: str, problems: list[Problem],
                 extra: tuple[tuple[str, str], ...] = ()) -> SimResponse:
        """An RFC 9457 problem report, in the shape and media type the operation documents for
        ``status`` when it documents one (so the response still validates)."""
        problem: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail,
                                   "errors": [p.to_json() for p in problems]}
        if op is None:
            return _json(status, problem, extra, self._unrouted_media)
        response = documented(op, status)
        media, schema = choose_media(response)
        if media is not None and schema is not None:
            # the spec documents its own error shape: speak it, carrying the problem where allowed
            hint: Any = problem
            if media_kind(media) != "json":
                hint = detail if primary_type(schema, schema) == "string" else problem
            elif media != PROBLEM_JSON:
                hint = {**problem, "message": detail, "code": status, "error": title}
            seed = f"{self.seed}|problem|{op.operation_id}|{status}"
            body = self.shaper.conform(schema, schema, hint, seed, keep_extra=True)
            return self._render(op, Outcome(status, body, media), extra)
        produced = self._produces.get(op.operation_id)
        if produced is not None or response is not None:
            return self._render(op, Outcome(status, problem, produced or PROBLEM_JSON), extra)
        return _json(status, problem, extra, PROBLEM_JSON)

    # -- auth -----------------------------------------------------------------------------

    def _authorised(self, op: Operation, headers: dict[str, str], query: tuple[tuple[str, str], ...]) -> bool:
        if not op.security:
            return True
        schemes = self.env.spec.security_schemes
        query_names = {k for k, _ in query}
        cookies = headers.get("cookie", "")
        for requirement in op.security:
            if all(_has_credential(schemes.get(name, {}), headers, query_names, cookies) for name in requirement):
                return True
        return False

    def _challenge(self, op: Operation) -> str:
        for requirement in op.security:
            for name in requirement:
                scheme = self.env.spec.security_schemes.get(name, {})
                if scheme.get("type") == "http":
                    return str(scheme.get("scheme", "bearer")).capitalize()
                if scheme.get("type") in ("oauth2", "openIdConnect"):
                    return "Bearer"
                if scheme.get("type") == "apiKey":
                    return f'ApiKey name="{scheme.get("name", "")}", in="{scheme.get("in", "header")}"'
        return "Bearer"

    # -- the control API ------------------------------------------------------------------

    def _control(self, req: SimRequest, session: str) -> SimResponse:
        action = req.path[len(CONTROL_PREFIX):].strip("/")
        method = req.method.upper()
        routes = {
            ("GET", "health"): lambda: {"status": "ok", "env": self.name,
                                        "operations": len(self.compiled), "fingerprint": self.fingerprint()},
            ("GET", "state"): lambda: self._state_body(session, dict(req.query)),
            ("GET", "journal"): lambda: {"session": session, "entries": self.session(session).journal},
            ("POST", "reset"): lambda: self._reset_body(session),
            ("POST", "snapshot"): lambda: {"session": session, "snapshot": self.snapshot(session)},
            ("DELETE", "session"): lambda: self._drop_body(session),
        }
        if (method, action) == ("POST", "restore"):
            try:
                snap = orjson.loads(req.body or b"{}").get("snapshot")
                self.restore(str(snap), session)
            except (orjson.JSONDecodeError, AttributeError):
                return _json(400, {"type": "about:blank", "title": "Bad Request", "status": 400,
                                   "detail": 'the body must be {"snapshot": "<id>"}', "errors": []},
                             media=PROBLEM_JSON)
            except KeyError:
                return _json(404, {"type": "about:blank", "title": "Not Found", "status": 404,
                                   "detail": f"no snapshot {snap!r}", "errors": []}, media=PROBLEM_JSON)
            return _json(200, self._state_body(session, {}))
        handler = routes.get((method, action))
        if handler is None:
            allowed = sorted(m for m, a in [*routes, ("POST", "restore")] if a == action)
            if allowed:
                return _json(405, {"type": "about:blank", "title": "Method Not Allowed", "status": 405,
                                   "detail": f"use {', '.join(allowed)}", "errors": []},
                             (("allow", ", ".join(allowed)),), PROBLEM_JSON)
            return _json(404, {"type": "about:blank", "title": "Not Found", "status": 404,
                               "detail": f"no control endpoint {req.path!r}", "errors": []}, media=PROBLEM_JSON)
        return _json(200, handler())

    def _reset_body(self, session: str) -> dict[str, Any]:
        self.reset(session)
        return self._state_body(session, {})

    def _drop_body(self, session: str) -> dict[str, Any]:
        self.drop(session)
        return {"session": session, "dropped": True}

    def _state_body(self, session: str, query: dict[str, str]) -> dict[str, Any]:
        state = self.session(session)
        body: dict[str, Any] = {"session": session, "hash": state.state_hash(), "writes": state.writes,
                                "fingerprint": self.fingerprint()}
        if query.get("full") in ("1", "true"):
            body["state"] = state.document()
        return body

    def state_hash(self, session: str = DEFAULT_SESSION) -> str:
        return self.session(session).state_hash()


def produced_media(spec: Spec) -> dict[str, str]:
    """operation id -> the JSON media type its schema-less responses carry (Swagger 2.0 only).

    In 2.0, ``produces`` covers every response of an operation, including those documented
    without a schema, so such a response (a 204, a problem report) still says ``Content-Type``.
    The model keeps ``produces`` only on responses with a schema: take it from the operation's
    other responses, else from the document's operations (its top-level ``produces``)."""
    if spec.source_format != "swagger-2.0":
        return {}
    default = document_media(spec)
    out: dict[str, str] = {}
    for op in spec.operations:
        media = _json_media((op,)) or default
        if media is not None:
            out[op.operation_id] = media
    return out


def document_media(spec: Spec) -> str | None:
    """Swagger 2.0: the JSON media type the document's operations produce most (its top-level
    ``produces``), which a problem for an unknown path or method is answered in too; None for
    OpenAPI 3.x, where problems for no operation are ``application/problem+json``."""
    return _json_media(spec.operations) if spec.source_format == "swagger-2.0" else None


def _json_media(ops: tuple[Operation, ...]) -> str | None:
    found = [m for op in ops for r in op.responses for m in r.content if media_kind(m) == "json"]
    return min(found, key=lambda m: (-found.count(m), m)) if found else None


def parse_query_string(raw: bytes | str) -> tuple[tuple[str, str], ...]:
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    return tuple(parse_qsl(text, keep_blank_values=True))


def _malformed(problems: list[Problem]) -> bool:
    return any(p.message.startswith(("the body is not valid", "a request body is required")) for p in problems)


def _documented_input_status(op: Operation, wanted: int) -> int:
    codes = {r.status for r in op.responses}
    if str(wanted) in codes:
        return wanted
    other = 400 if wanted == 422 else 422
    return other if str(other) in codes else wanted


def _has_credential(scheme: dict[str, Any], headers: dict[str, str], query: set[str], cookies: str) -> bool:
    kind = scheme.get("type")
    if kind == "apiKey":
        name = str(scheme.get("name", ""))
        where = scheme.get("in", "header")
        if where == "query":
            return name in query
        if where == "cookie":
            return any(part.strip().startswith(name + "=") for part in cookies.split(";"))
        return name.lower() in headers
    auth = headers.get("authorization", "")
    if kind == "http":
        return auth.lower().startswith(str(scheme.get("scheme", "bearer")).lower() + " ")
    if kind in ("oauth2", "openIdConnect"):
        return auth.lower().startswith("bearer ")
    return bool(auth)


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json_bytes(value).decode()
    return str(value)


def _to_xml(value: Any, tag: str = "response") -> str:
    if isinstance(value, dict):
        inner = "".join(_to_xml(v, str(k)) for k, v in value.items())
    elif isinstance(value, list):
        inner = "".join(_to_xml(v, "item") for v in value)
    else:
        inner = str(value).replace("&", "&amp;").replace("<", "&lt;")
    return f"<{tag}>{inner}</{tag}>"


__all__ = ["Simulator", "canonical_json", "parse_query_string"]

"""The simulator: one environment, many sessions, answering :class:`SimRequest` objects.

This is the in-process API (no sockets) that the ASGI app, the generator and the certifier
share, so every path gives the same bytes. ``Simulator.handle`` never raises for client
input: bad input is a 4xx problem report. Sessions and snapshots live in a
:class:`~simulator.state.sessions.SessionRegistry` (bounded, see there); credentials are checked by
:mod:`simulator.service.auth`; the ``/_sim`` control API is the HTTP shell's (:mod:`simulator.serving.control`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from simulator.canonical import canonical_json, json_bytes, pointer_tokens
from simulator.datagen.plan import GenerationError
from simulator.environments.environment import Environment
from simulator.environments.resources import ResourceModel, infer_resources
from simulator.errors import SessionFull, SessionGone
from simulator.messages import DEFAULT_SESSION, SimRequest, SimResponse
from simulator.spec.model import Operation, Spec
from simulator.spec.navigation import primary_type
from simulator.state.memo import BoundedMemo
from simulator.state.scopes import parent_links
from simulator.state.sessions import Limits, SessionRegistry
from simulator.state.store import Session, World

from .auth import Authenticator, RequestCredentials
from .expansion import EXPAND, asked, requested_paths
from .handlers import NO_BODY, Conflict, Handlers, NotFound, Outcome, choose_media, documented
from .problems import problem_hint
from .routing import Router
from .shaping import Shaper
from .validation import CompiledOperation, Problem, UnsupportedMediaType, media_kind, sent_media
from .writes import WriteRefused

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
ROUTE_MEMO = 4096  # (path, method) pairs whose routing is remembered
_UNSEEN = object()
AUTH_MODES = ("off", "enforce")


def _json(status: int, body: Any, extra: tuple[tuple[str, str], ...] = (), media: str = "application/json") -> SimResponse:
    return SimResponse(status, (("content-type", media), *extra), json_bytes(body))


def problem_response(status: int, title: str, detail: str, extra: tuple[tuple[str, str], ...] = ()) -> SimResponse:
    """An RFC 9457 problem report that no operation documents (session and server limits)."""
    return _json(status, {"type": "about:blank", "title": title, "status": status, "detail": detail,
                          "errors": []}, extra, PROBLEM_JSON)


class Simulator:
    """A deterministic mock of one environment. Not thread-safe: one request at a time
    (the ASGI app runs handlers without awaiting in between).

    ``limits`` bounds the sessions and snapshots it holds (default: :class:`Limits` ();
    library callers that drop their own sessions pass ``Limits.unbounded()``);
    ``credentials`` (scheme name -> accepted values) is what ``auth="enforce"`` checks."""

    def __init__(self, env: Environment, *, auth: str = "off", limits: Limits | None = None,
                 credentials: Mapping[str, tuple[str, ...]] | None = None) -> None:
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {AUTH_MODES}, got {auth!r}")
        self.env = env
        self.auth = auth
        self.name = env.name
        self.seed = f"{env.spec.sha256}|{env.seed}"
        self.model: ResourceModel = infer_resources(env.spec, env.overrides)
        self.shaper = Shaper(env.epoch)
        self.world = World(self.seed, env.fixtures, self.shaper, self.model.resources.values())
        self.handlers = Handlers(self.seed, self.world, self.shaper, env.epoch,
                                 parent_links(self.model.resources.values()))
        self.base_path = env.spec.base_path.rstrip("/")
        self.compiled = [CompiledOperation(op) for op in env.spec.operations]
        self._produces = produced_media(env.spec)
        self._unrouted_media = document_media(env.spec) or PROBLEM_JSON
        self._router: Router[CompiledOperation] = Router()
        # (path, method) -> what route() found: bounded, as clients choose the paths
        self._routes: BoundedMemo[tuple[str, str], Any] = BoundedMemo(ROUTE_MEMO)
        # (operation id, status) -> the headers every such response carries (fixed by the seed)
        self._headers: dict[tuple[str, int], tuple[tuple[str, str], ...]] = {}
        for c in self.compiled:
            self._router.add(c.op.path, c)
        self.registry = SessionRegistry(limits)
        self.authenticator: Authenticator | None = None
        if auth == "enforce":
            self.authenticator = Authenticator(env.spec.security_schemes, credentials or {}, env.name)
        self._fingerprint = self.fingerprint_of(env, auth)

    # -- sessions -------------------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        return dict(self._fingerprint)

    @staticmethod
    def fingerprint_of(env: Environment, auth: str) -> dict[str, Any]:
        """The fingerprint a simulator of ``env`` with ``auth`` reports, without building one
        (compiling a large spec's operations takes a while)."""
        return {**env.fingerprint(), "auth": auth}

    def session(self, name: str = DEFAULT_SESSION) -> Session:
        """The live session (created on first use); :class:`SessionGone` once evicted."""
        return self.registry.get(name)

    def snapshot(self, name: str = DEFAULT_SESSION) -> str:
        return self.registry.snapshot(name)

    def restore(self, snapshot_id: str, name: str = DEFAULT_SESSION) -> None:
        """UnknownSnapshot (a KeyError) for an unknown snapshot id, SessionGone for an evicted one."""
        self.registry.restore(snapshot_id, name)

    def reset(self, name: str = DEFAULT_SESSION) -> None:
        self.registry.reset(name)

    def drop(self, name: str) -> None:
        self.registry.drop(name)

    # -- requests -------------------------------------------------------------------------

    def handle(self, req: SimRequest, session: str = DEFAULT_SESSION) -> SimResponse:
        try:
            state = self.registry.get(session)
        except SessionGone as exc:
            return problem_response(410, "Gone", str(exc))
        if self.authenticator is not None:  # who may later read this session's journal
            self.registry.claim(session, self.authenticator.principal(_credentials(req)))
        head = req.method.upper() == "HEAD" and self._head_as_get(req.path)
        try:
            resp = self._mock(dataclasses.replace(req, method="GET") if head else req, state)
        except SessionFull as exc:
            resp = problem_response(507, "Insufficient Storage", str(exc))
        except GenerationError as exc:  # the spec's schema for the answer admits no value found
            log.error("%s %s: the spec's response schema admits no value the simulator could find: %s",
                      req.method, req.path, exc)
            resp = problem_response(500, "No valid response", "the spec's schema for this response admits no "
                                    f"value the simulator could find ({exc})")
        except Exception:  # a simulator bug: say so, never a traceback (nor its text) to the client
            log.exception("simulator error on %s %s", req.method, req.path)
            resp = problem_response(500, "Simulator error", "an internal error; the server log has the details")
        state.journal.record(req.method, req.path, req.query, req.body, resp.status, resp.body, state.state_hash())
        self.registry.account(session)
        if head:  # what GET would send, without the body (RFC 9110 section 9.3.2)
            resp = SimResponse(resp.status, (*resp.headers, ("content-length", str(len(resp.body)))), b"")
        return resp

    def _head_as_get(self, path: str) -> bool:
        """HEAD is answered as GET where the path has a GET and no HEAD operation of its own."""
        found = self.route(path, "HEAD")
        if found and any(c.op.method == "HEAD" for c in found[0]):
            return False
        found = self.route(path, "GET")
        return found is not None and any(c.op.method == "GET" for c in found[0])

    def route(self, path: str, method: str = "") -> tuple[list[CompiledOperation], dict[str, str]] | None:
        """The operations at the most specific path template matching ``path`` that has
        ``method`` (else at the most specific match, which then answers 405), and the path
        parameter values (a dict of its own)."""
        hit = self._routes.get((path, method), _UNSEEN)
        if hit is _UNSEEN:
            hit = self._find_route(path, method)
            if hit is not None:  # a miss (a 404) is not kept: any client path would take a slot
                self._routes[(path, method)] = hit
        return None if hit is None else (hit[0], dict(hit[1]))

    def _find_route(self, path: str, method: str) -> tuple[list[CompiledOperation], dict[str, str]] | None:
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
        authenticator = self.authenticator
        if authenticator is not None and not authenticator.allows(op, RequestCredentials.of(headers, req.query)):
            return self._problem(op, 401, "Unauthorized", "the credentials the operation requires are "
                                 "missing or wrong", [], (("www-authenticate", authenticator.challenge(op)),))
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
        expand = asked(parsed.query, parsed.body)
        why = None if expand is None else self.handlers.expansion_refused(op, expand[1])
        if expand is not None and why is not None:  # refused before anything is done, as Stripe does
            where = expand[0]
            return self._problem(op, _documented_input_status(op, 400), "Bad Request", why,
                                 [Problem(where, EXPAND, "" if where == "query" else f"/{EXPAND}", why)])
        binding = self.model.bindings[op.operation_id]
        res = self.model.resources.get(binding.resource) if binding.resource else None
        try:
            outcome = self.handlers.handle(session, binding, res, parsed)
        except NotFound as exc:
            return self._problem(op, 404, "Not Found", exc.detail,
                                 [Problem("path", exc.param or res.id_param or "", "", exc.detail)] if res else [])
        except Conflict as exc:
            return self._problem(op, 409, "Conflict", exc.detail,
                                 [Problem("path", res.id_param or "", "", exc.detail)] if res else [])
        except SessionFull as exc:  # in the API's own error shape where it documents one (Stripe's)
            return self._problem(op, 507, "Insufficient Storage", str(exc), [])
        except WriteRefused as exc:  # valid for the request schema, but not storable as sent
            field = pointer_tokens(exc.pointer)[0] if exc.pointer else ""
            return self._problem(op, _documented_input_status(op, 422), "The write cannot be stored as sent",
                                 f"field {field!r} ({exc.pointer}): {exc.reason}",
                                 [Problem("body", field, exc.pointer, exc.reason)])
        paths = requested_paths(parsed.query, parsed.body)
        if paths:
            outcome = self.handlers.expanded(session, op, outcome, paths, parsed)
        return self._render(op, outcome)

    def _render(self, op: Operation, outcome: Outcome, extra: tuple[tuple[str, str], ...] = ()) -> SimResponse:
        documented_headers = self._headers.get((op.operation_id, outcome.status))
        if documented_headers is None:
            documented_headers = self._headers[(op.operation_id, outcome.status)] = self._documented_headers(
                op, outcome.status)
        headers = [*extra, *documented_headers]
        if outcome.body is NO_BODY:
            produced = self._produces.get(op.operation_id)
            if produced is not None:
                headers.insert(0, ("content-type", produced))
            return SimResponse(outcome.status, tuple(headers), b"")
        media = sent_media(outcome.media_type or "application/json")
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

    def _documented_headers(self, op: Operation, status: int) -> tuple[tuple[str, str], ...]:
        """The required response headers ``op`` documents for ``status``, with generated values."""
        headers = []
        spec = documented(op, status)
        if spec is not None:
            for name, (required, schema) in sorted(spec.headers.items()):
                if required and name.lower() != "content-type":
                    value = self.shaper.generate(schema, schema, f"{self.seed}|header|{op.operation_id}|{name}", name)
                    headers.append((name.lower(), _header_text(value)))
        return tuple(headers)

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
                hint = problem_hint(schema, schema, problem, problems)
            seed = f"{self.seed}|problem|{op.operation_id}|{status}"
            body = self.shaper.conform(schema, schema, hint, seed, keep_extra=True)
            return self._render(op, Outcome(status, body, media), extra)
        produced = self._produces.get(op.operation_id)
        if produced is not None or response is not None:
            return self._render(op, Outcome(status, problem, produced or PROBLEM_JSON), extra)
        return _json(status, problem, extra, PROBLEM_JSON)

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


def _credentials(req: SimRequest) -> RequestCredentials:
    return RequestCredentials.of(dict(req.headers), req.query)


def parse_query_string(raw: bytes | str) -> tuple[tuple[str, str], ...]:
    if not raw:
        return ()
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

"""The ``/_sim`` control API: a FastAPI application that documents itself.

Served by the ASGI shell for every path under ``/_sim`` (the simulated API never goes through
FastAPI: it stays on the compiled raw-ASGI path). Endpoints, all JSON, problems as RFC 9457
``application/problem+json``; the session is the ``X-Sim-Session`` header (``default``):

=======================  ==================================================================
GET    /_sim/health      liveness, environment and fingerprint (no credentials needed)
GET    /_sim/state       the session's state hash and write count (``?full=1``: the overlay)
GET    /_sim/journal     the session's journal, a page at a time (``?after=SEQ&limit=N``)
POST   /_sim/reset       a fresh session (also revives an evicted one)
POST   /_sim/snapshot    store the session's state; returns its id
POST   /_sim/restore     ``{"snapshot": ID}``: replace the session's state by a snapshot
DELETE /_sim/snapshot/ID forget a snapshot
DELETE /_sim/session     forget the session
GET    /_sim/usage       what is held against which limit (admin)
GET    /_sim/sessions    live session names, least recently used first (admin)
GET    /_sim/spec        the served spec; /_sim/docs and /_sim/openapi.json describe both APIs
=======================  ==================================================================

Who may call what is :mod:`simulator.serving.control_access`'s; endpoints are ``async`` so they run on
the event loop's thread, one at a time, like the simulated API (the simulator is not thread-safe).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from simulator import __version__
from simulator.canonical import json_bytes
from simulator.errors import SessionGone
from simulator.messages import DEFAULT_SESSION, SESSION_HEADER
from simulator.service.auth import RequestCredentials
from simulator.service.simulator import PROBLEM_JSON, Simulator
from simulator.state.journal import DEFAULT_PAGE, MAX_PAGE
from simulator.state.sessions import NotOwner

from .control_access import ADMIN_HEADER, AccessDenied, ControlPolicy

CONTROL_PREFIX = "/_sim"
MAX_SESSION_NAME = 256


# -- models --------------------------------------------------------------------------------------


class Problem(BaseModel):
    """An RFC 9457 problem report."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] = Field(default_factory=list)


class Health(BaseModel):
    status: str = Field(description="always 'ok' when the server answers")
    env: str
    operations: int = Field(description="operations the simulated API serves")
    fingerprint: dict[str, Any] = Field(description="what every response depends on besides the requests")


class State(BaseModel):
    session: str
    hash: str = Field(description="canonical digest of the session's state; a snapshot id")
    writes: int
    fingerprint: dict[str, Any]
    state: dict[str, Any] | None = Field(None, description="the overlay of changes (with ?full=1)")


class JournalPage(BaseModel):
    session: str
    entries: list[dict[str, Any]] = Field(description="oldest first; bodies cut to the journal's body limit")
    next_after: int | None = Field(description="pass as ?after= for the next page; null at the newest entry")
    first_seq: int = Field(description="the oldest entry the ring still holds")
    total: int = Field(description="requests the session ever made")
    dropped: int = Field(description="older entries the ring no longer holds")


class SnapshotTaken(BaseModel):
    session: str
    snapshot: str = Field(description="the snapshot id (the state hash)")


class RestoreRequest(BaseModel):
    snapshot: str = Field(max_length=128, description="a snapshot id from POST /_sim/snapshot")


class SessionDropped(BaseModel):
    session: str
    dropped: bool = Field(description="false when there was no live session by that name")


class SnapshotDeleted(BaseModel):
    snapshot: str
    deleted: bool


class Usage(BaseModel):
    sessions: int
    snapshots: int
    held_bytes: int = Field(description="canonical JSON bytes of every record and journal entry held")
    evicted_sessions: int
    evicted_snapshots: int
    remembered_evictions: int
    limits: dict[str, int | None]


class SessionList(BaseModel):
    sessions: list[str]


class EmptyRequest(BaseModel):
    """Nothing to say; the JSON body ``{}`` (state-changing calls must be JSON)."""


# -- access --------------------------------------------------------------------------------------


class Caller:
    """The session a control request acts on, and whether it carries the admin token."""

    __slots__ = ("admin", "session")

    def __init__(self, session: str, admin: bool) -> None:
        self.session, self.admin = session, admin


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None,
            errors: list[dict[str, Any]] | None = None) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "errors": errors or []}
    return Response(json_bytes(body), status, headers=headers, media_type=PROBLEM_JSON)


async def caller(request: Request) -> Caller:
    """Who is calling, on which session: checks Host, Origin, media type and the admin token."""
    simulator: Simulator = request.app.state.simulator
    policy: ControlPolicy = request.app.state.policy
    headers = {k.lower(): v for k, v in request.headers.items()}
    policy.check_host(headers)
    policy.check_unsafe(request.method, headers)
    session = headers.get(SESSION_HEADER) or DEFAULT_SESSION
    if len(session) > MAX_SESSION_NAME:
        raise AccessDenied(400, "Bad Request", f"{SESSION_HEADER} is longer than {MAX_SESSION_NAME} characters")
    admin = policy.is_admin(headers)
    if not admin and policy.closed:
        _admit(simulator, session, request, policy)
    return Caller(session, admin)


async def admin_only(who: Annotated[Caller, Depends(caller)], request: Request) -> Caller:
    if not who.admin:
        raise AccessDenied(403, "Forbidden", f"this call needs the admin token ({ADMIN_HEADER})",
                           request.app.state.policy.challenge())
    return who


Who = Annotated[Caller, Depends(caller)]
Admin = Annotated[Caller, Depends(admin_only)]


def build_control_app(simulator: Simulator, policy: ControlPolicy | None = None) -> FastAPI:
    """The control API for ``simulator`` under ``policy`` (default: an open, loopback plane)."""
    policy = policy or ControlPolicy()
    app = FastAPI(
        title=f"toolgrad simulator control API: {simulator.name}", version=__version__,
        description="Sessions, snapshots and the journal of one simulated environment. The session is "
                    f"the `{SESSION_HEADER}` header; admin calls carry `{ADMIN_HEADER}`.",
        openapi_url=f"{CONTROL_PREFIX}/openapi.json", docs_url=None, redoc_url=None,
        responses={401: {"model": Problem}, 403: {"model": Problem}, 410: {"model": Problem}},
    )
    app.state.simulator = simulator
    app.state.policy = policy
    _install_problem_handlers(app)
    _add_session_routes(app, simulator)
    _add_admin_routes(app, simulator)
    _add_document_routes(app, simulator, policy)
    return app


def _admit(simulator: Simulator, session: str, request: Request, policy: ControlPolicy) -> None:
    """A closed plane without the admin token: only a client sharing a credential with the first
    request that used the session with credentials (or, for an unclaimed one, any client with
    valid credentials, which then claims it) may act on it."""
    authenticator = simulator.authenticator
    principal: frozenset[str] = frozenset()
    if authenticator is not None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        principal = authenticator.principal(RequestCredentials.of(headers, request.query_params.multi_items()))
    if not principal:
        raise AccessDenied(401, "Unauthorized", "the control API needs the admin token "
                           f"({ADMIN_HEADER}) or, under enforced auth, the session's own API credentials",
                           policy.challenge())
    try:
        simulator.registry.get(session)
        simulator.registry.check_owner(session, principal)
    except NotOwner:
        raise AccessDenied(403, "Forbidden", f"session {session!r} belongs to another client") from None


def _state(simulator: Simulator, session: str, full: bool = False) -> State:
    state = simulator.session(session)
    return State(session=session, hash=state.state_hash(), writes=state.writes,
                 fingerprint=simulator.fingerprint(), state=state.document() if full else None)


def _add_session_routes(app: FastAPI, simulator: Simulator) -> None:
    @app.get(f"{CONTROL_PREFIX}/health", response_model=Health, tags=["server"])
    async def health() -> Health:
        """Liveness: answers 200 with the environment's fingerprint (no credentials needed)."""
        return Health(status="ok", env=simulator.name, operations=len(simulator.compiled),
                      fingerprint=simulator.fingerprint())

    @app.get(f"{CONTROL_PREFIX}/state", response_model=State, response_model_exclude_none=True, tags=["session"])
    async def state(who: Who, full: Annotated[str | None, Query(description="1 or true: include the overlay")] = None,
                    ) -> State:
        """The session's state hash and write count."""
        return _state(simulator, who.session, full in ("1", "true"))

    @app.get(f"{CONTROL_PREFIX}/journal", response_model=JournalPage, tags=["session"])
    async def journal(who: Who, after: Annotated[int, Query(ge=-1, le=2**62)] = -1,
                      limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE) -> JournalPage:
        """A page of the session's journal: entries with ``seq > after``, oldest first."""
        page = simulator.session(who.session).journal.page(after, limit)
        return JournalPage(session=who.session, entries=page.entries, next_after=page.next_after,
                           first_seq=page.first_seq, total=page.total, dropped=page.dropped)

    @app.post(f"{CONTROL_PREFIX}/reset", response_model=State, response_model_exclude_none=True, tags=["session"])
    async def reset(who: Who, _: EmptyRequest | None = None) -> State:
        """Replace the session by a fresh one (fixtures only); revives an evicted session."""
        simulator.reset(who.session)
        return _state(simulator, who.session)

    @app.post(f"{CONTROL_PREFIX}/snapshot", response_model=SnapshotTaken, tags=["snapshots"])
    async def snapshot(who: Who, _: EmptyRequest | None = None) -> SnapshotTaken:
        """Store the session's state; the id is its state hash (content-addressed)."""
        return SnapshotTaken(session=who.session, snapshot=simulator.snapshot(who.session))

    @app.post(f"{CONTROL_PREFIX}/restore", response_model=State, response_model_exclude_none=True,
              responses={404: {"model": Problem}}, tags=["snapshots"])
    async def restore(who: Who, body: RestoreRequest) -> Response | State:
        """Replace the session's state by a stored snapshot (of any session: a fork)."""
        try:
            simulator.restore(body.snapshot, who.session)
        except KeyError:
            return problem(404, "Not Found", f"no snapshot {body.snapshot!r}")
        return _state(simulator, who.session)

    @app.delete(f"{CONTROL_PREFIX}/snapshot/{{snapshot_id}}", response_model=SnapshotDeleted, tags=["snapshots"])
    async def delete_snapshot(who: Who, snapshot_id: str) -> SnapshotDeleted:
        """Forget a snapshot (sessions restored from it keep their state)."""
        return SnapshotDeleted(snapshot=snapshot_id, deleted=simulator.registry.delete_snapshot(snapshot_id))

    @app.delete(f"{CONTROL_PREFIX}/session", response_model=SessionDropped, tags=["session"])
    async def drop(who: Who) -> SessionDropped:
        """Forget the session; its name starts afresh on next use."""
        return SessionDropped(session=who.session, dropped=simulator.registry.drop(who.session))


def _add_admin_routes(app: FastAPI, simulator: Simulator) -> None:
    @app.get(f"{CONTROL_PREFIX}/usage", response_model=Usage, tags=["server"])
    async def usage(who: Admin) -> Usage:
        """Sessions, snapshots and bytes held, evictions so far, and the limits (admin)."""
        return Usage(**simulator.registry.usage())

    @app.get(f"{CONTROL_PREFIX}/sessions", response_model=SessionList, tags=["server"])
    async def sessions(who: Admin) -> SessionList:
        """Live session names, least recently used first (admin)."""
        return SessionList(sessions=simulator.registry.names())


def _add_document_routes(app: FastAPI, simulator: Simulator, policy: ControlPolicy) -> None:
    served: list[bytes] = []  # read on first use: a cold start should not pay for it

    @app.get(f"{CONTROL_PREFIX}/spec", tags=["documents"], response_class=Response,
             responses={200: {"content": {"application/json": {}}, "description": "the served spec"}})
    async def spec(request: Request) -> Response:
        """The served spec's root document, as JSON."""
        policy.check_host({k.lower(): v for k, v in request.headers.items()})
        if not served:
            served.append(served_spec_bytes(simulator))
        return Response(served[0], media_type="application/json")

    @app.get(f"{CONTROL_PREFIX}/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        policy.check_host({k.lower(): v for k, v in request.headers.items()})
        return get_swagger_ui_html(
            openapi_url=f"{CONTROL_PREFIX}/openapi.json", title=f"{simulator.name}: simulated API and control API",
            swagger_ui_parameters={"urls": [
                {"url": f"{CONTROL_PREFIX}/spec", "name": f"{simulator.name} (simulated API)"},
                {"url": f"{CONTROL_PREFIX}/openapi.json", "name": "control API"},
            ]},
        )


def _install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(AccessDenied)
    async def denied(request: Request, exc: AccessDenied) -> Response:
        return problem(exc.status, exc.title, exc.detail, exc.headers)

    @app.exception_handler(SessionGone)
    async def gone(request: Request, exc: SessionGone) -> Response:
        return problem(410, "Gone", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"location": str(e["loc"][0]) if e.get("loc") else "", "name": ".".join(str(p) for p in e["loc"][1:]),
                   "message": str(e.get("msg", ""))} for e in exc.errors()]
        return problem(400, "Bad Request", f"{len(errors)} problem(s) with the request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not Found", 405: "Method Not Allowed"}
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no control endpoint {request.url.path!r}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; use {(exc.headers or {}).get('Allow', '?')}"
        return problem(exc.status_code, titles.get(exc.status_code, "Error"), detail, dict(exc.headers or {}))


def served_spec_bytes(simulator: Simulator) -> bytes:
    """The spec's root document as JSON (read bounded, like any spec)."""
    from simulator.spec.loader import read_spec_document

    return json_bytes(read_spec_document(simulator.env.spec.source))


__all__ = ["CONTROL_PREFIX", "build_control_app", "served_spec_bytes"]

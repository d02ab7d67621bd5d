"""The ASGI shell around :class:`~simulator.service.simulator.Simulator`: bytes in, bytes out.

The simulated API is served by a plain ASGI callable rather than a framework: routing,
validation and responses are the simulator's own (the in-process API must give the same bytes
without any web framework), and a framework's per-request machinery would cost more than the
rest of the hot path. Only ``/_sim/...`` goes to the control API, a FastAPI application
(:mod:`simulator.serving.control`) built on its first use, so a cold start does not pay for it.

Limits a client cannot push past: a request body of at most ``max_body`` bytes (16 MiB; 1 MiB
for the control API), an ``X-Sim-Session`` name of at most 256 characters. With
``access_log``, one line per request goes to the ``simulator.access`` logger: session, method,
path, status and milliseconds.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from simulator.messages import DEFAULT_SESSION, SESSION_HEADER, SimRequest
from simulator.service.simulator import Simulator, parse_query_string

from .control_access import ControlPolicy

MAX_BODY = 16 * 1024 * 1024
MAX_CONTROL_BODY = 1024 * 1024
MAX_SESSION_NAME = 256
CONTROL_PREFIX = "/_sim"
access_log = logging.getLogger("simulator.access")

_TOO_LARGE = b'{"type":"about:blank","title":"Payload Too Large","status":413,"detail":"the body is larger than the server accepts","errors":[]}'
_BAD_SESSION = (b'{"type":"about:blank","title":"Bad Request","status":400,"detail":"the x-sim-session header '
                b'is longer than 256 characters","errors":[]}')
_PROBLEM = [(b"content-type", b"application/problem+json")]


def build_app(simulator: Simulator, *, policy: ControlPolicy | None = None, log_requests: bool = False,
              max_body: int = MAX_BODY, wrap_control: Callable[[Any], Any] | None = None) -> Any:
    """An ASGI 3 application serving ``simulator`` (http and lifespan scopes) and its control API
    (``wrap_control``, when given, wraps the control app: the server's proxy-headers middleware,
    which only the control API needs, as the simulated API reads no client address or scheme)."""
    control = _LazyControl(simulator, policy or ControlPolicy(), wrap_control)
    spec_path = _free_spec_path(simulator)
    spec_body: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX) and (len(path) == 5 or path[5] == "/"):
            await control(scope, receive, send)
            return
        body = await _read_body(receive, max_body)
        if body is None:
            await _send(send, 413, _PROBLEM, _TOO_LARGE)
            return
        session = DEFAULT_SESSION
        headers: list[tuple[str, str]] = []
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name == SESSION_HEADER:
                session = value or DEFAULT_SESSION
            headers.append((name, value))
        if len(session) > MAX_SESSION_NAME:
            await _send(send, 400, _PROBLEM, _BAD_SESSION)
            return
        raw_path = scope.get("raw_path") or path.encode()
        request_path = raw_path.decode("latin-1").split("?", 1)[0]
        if request_path == spec_path and scope["method"] in ("GET", "HEAD"):
            if not spec_body:
                from .control import served_spec_bytes

                spec_body.append(served_spec_bytes(simulator))
            await _send(send, 200, [(b"content-type", b"application/json")], spec_body[0])
            return
        request = SimRequest(
            method=scope["method"],
            path=request_path,
            query=parse_query_string(scope.get("query_string", b"")),
            headers=tuple(headers),
            body=body,
        )
        response = simulator.handle(request, session)
        out = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
        await _send(send, response.status, out, response.body)

    return _with_access_log(app) if log_requests else app


class _LazyControl:
    """The FastAPI control app, imported and built on the first ``/_sim`` request."""

    def __init__(self, simulator: Simulator, policy: ControlPolicy, wrap: Callable[[Any], Any] | None) -> None:
        self.simulator, self.policy, self.wrap = simulator, policy, wrap
        self._app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await _read_body(receive, MAX_CONTROL_BODY)
        if body is None:
            await _send(send, 413, _PROBLEM, _TOO_LARGE)
            return
        if self._app is None:
            from .control import build_control_app

            self._app = build_control_app(self.simulator, self.policy)
            if self.wrap is not None:
                self._app = self.wrap(self._app)
            # FastAPI, pydantic and the app live as long as the server: like the spec at startup,
            # keep the cyclic GC from rescanning them on every full collection
            gc.collect()
            gc.freeze()
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:  # FastAPI only asks again to learn of a disconnect
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._app(scope, replay, send)


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # the spec, the model and compiled plans live as long as the server: keep the
            # cyclic GC from rescanning them on every full collection (tail latency)
            gc.collect()
            gc.freeze()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The whole request body, or None once it passes ``limit`` (the rest is read and dropped,
    so the connection stays usable, but never kept)."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif chunks:
            chunks.clear()
        more = message.get("more_body", False)
    return None if size > limit else b"".join(chunks)


def _free_spec_path(simulator: Simulator) -> str | None:
    """``<base path>/openapi.json`` when no operation answers there (it serves the spec)."""
    path = f"{simulator.base_path}/openapi.json"
    return path if simulator.route(path) is None else None


def _with_access_log(app: Callable[..., Any]) -> Callable[..., Any]:
    async def logged(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        async def send_and_note(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await app(scope, receive, send_and_note)
        session = next((v.decode("latin-1") for n, v in scope["headers"] if n.lower() == b"x-sim-session"), "")
        access_log.info("session=%s %s %s %d %.2fms", session[:MAX_SESSION_NAME] or DEFAULT_SESSION,
                        scope["method"], scope["path"], status[0], (time.perf_counter() - started) * 1000)

    return logged


async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    if not any(name == b"content-length" for name, _ in headers):
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""The ASGI shell around :class:`~simulator.service.Simulator`: bytes in, bytes out.

A plain ASGI callable rather than a FastAPI app: routing, validation and the control API are
the simulator's own (the in-process API must give the same bytes without any web framework),
and a framework's per-request machinery would cost more than the rest of the hot path.
"""

from __future__ import annotations

import gc
from typing import Any

from .sandbox import DEFAULT_SESSION, SESSION_HEADER, SimRequest
from .service import Simulator, parse_query_string

_MAX_BODY = 16 * 1024 * 1024


def build_app(simulator: Simulator) -> Any:
    """An ASGI 3 application serving ``simulator`` (http and lifespan scopes)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
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
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= _MAX_BODY:
                chunks.append(chunk)
            more = message.get("more_body", False)
        if size > _MAX_BODY:
            await _send(send, 413, [(b"content-type", b"application/problem+json")],
                        b'{"type":"about:blank","title":"Payload Too Large","status":413,"errors":[]}')
            return
        session = DEFAULT_SESSION
        headers: list[tuple[str, str]] = []
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name == SESSION_HEADER:
                session = value or DEFAULT_SESSION
            headers.append((name, value))
        raw_path = scope.get("raw_path") or scope["path"].encode()
        request = SimRequest(
            method=scope["method"],
            path=raw_path.decode("latin-1").split("?", 1)[0],
            query=parse_query_string(scope.get("query_string", b"")),
            headers=tuple(headers),
            body=b"".join(chunks),
        )
        response = simulator.handle(request, session)
        out = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
        await _send(send, response.status, out, response.body)

    return app


async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

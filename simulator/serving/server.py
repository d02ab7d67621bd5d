"""Serve an environment over HTTP with uvicorn (loopback by default).

The listening socket is bound before anything is announced, so a busy port is one clear error
(:class:`PortBusyError`) instead of a "serving" line followed by errno 98, and the port printed
is the port bound. Slow clients cannot hold a connection: a request's head must arrive within
``HEAD_TIMEOUT_S`` of its first byte (or of the connection opening), its body within
``BODY_TIMEOUT_S`` after that, and an idle keep-alive connection closes after
``KEEP_ALIVE_S`` (``$TOOLGRAD_SIM_HEAD_TIMEOUT_S`` and ``$TOOLGRAD_SIM_BODY_TIMEOUT_S`` override
the first two).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from simulator.errors import SimulatorError

from .asgi import build_app
from .control_access import ControlPolicy

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
HEAD_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 60.0
KEEP_ALIVE_S = 5
SWEEP_S = 1.0
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"  # what uvicorn sends before reading a body that waits for it
JOIN_LIMIT = 64 * 1024  # a response body up to this size goes out in one send with its head

log = logging.getLogger(__name__)


class PortBusyError(SimulatorError):
    """The address to serve on cannot be bound (in use, not ours, or not an address here)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port); :class:`PortBusyError`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortBusyError(f"cannot serve on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "it is already in use" if exc.errno == 98 else exc.strerror or str(exc)
        raise PortBusyError(f"cannot serve on {host}:{port}: {reason}"
                            "\n  fix: stop what listens there or pick another --port (0: any free port)") from None
    sock.set_inheritable(True)
    return sock


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def _timed_protocol() -> Any:
    """uvicorn's httptools protocol with deadlines on reading a request (None without httptools)."""
    head_timeout = _seconds("TOOLGRAD_SIM_HEAD_TIMEOUT_S", HEAD_TIMEOUT_S)
    body_timeout = _seconds("TOOLGRAD_SIM_BODY_TIMEOUT_S", BODY_TIMEOUT_S)
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
        return None

    class TimedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc]
        """Closes a connection whose request head or body trickles in past its deadline.

        A request only sets a number (its deadline); one sweep per second per event loop closes
        the late connections, so the hot path creates and cancels no timers."""

        _deadline: float | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._deadline = self.loop.time() + head_timeout
            _sweep_later(self.loop, self.connections)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._deadline is None:
                self._deadline = self.loop.time() + head_timeout

        def on_headers_complete(self) -> None:
            self._deadline = self.loop.time() + body_timeout
            previous = self.cycle
            super().on_headers_complete()
            cycle = self.cycle  # the new request's (a pipelined one waits for its turn)
            if cycle is None or cycle is previous:  # no new cycle: an upgrade request uvicorn answers itself
                return
            held = HeldHeadTransport(self.transport, cycle.on_response)
            cycle.transport = held  # type: ignore[assignment]  # writes and closes, the rest delegated
            cycle.on_response = held

        def on_message_complete(self) -> None:
            self._deadline = None
            super().on_message_complete()

    return TimedHttpToolsProtocol


class HeldHeadTransport:
    """What one request-response cycle writes through: the response head is held until the
    body follows, so a response goes out in one send (one segment on loopback) instead of two.

    uvicorn writes the status line and headers, then the body, each with its own
    ``transport.write`` (a syscall each, about a quarter of the server's time under load). The
    bytes and their order are unchanged: the first write other than ``100 Continue`` is the
    head; what follows it (a body, a chunk) goes out joined to it, and the head goes out alone
    when the response completes without a body write (HEAD) or the connection closes. Called,
    it is the cycle's completion callback. It holds no reference to the cycle (no reference
    cycle: a finished cycle is freed at once, not by the cyclic GC)."""

    __slots__ = ("_head", "_on_response", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, on_response: Callable[[], None]) -> None:
        self._transport, self._on_response = transport, on_response
        self._head, self._started = b"", False

    def write(self, data: bytes) -> None:
        if not self._started:
            if data != _CONTINUE:
                self._started, self._head = True, data
                return
        elif self._head:
            head, self._head = self._head, b""
            if len(data) > JOIN_LIMIT:  # not worth copying a large body to save one send
                self._transport.write(head)
            else:
                data = head + data
        self._transport.write(data)

    def flush(self) -> None:
        if self._head:
            head, self._head = self._head, b""
            if not self._transport.is_closing():
                self._transport.write(head)

    def __call__(self) -> None:
        self.flush()
        self._on_response()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


_sweeping: set[int] = set()  # ids of the event loops with a sweep scheduled


def _sweep_later(loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
    """Once a second while connections are open: close those past their read deadline."""
    if id(loop) in _sweeping:
        return
    _sweeping.add(id(loop))

    def sweep() -> None:
        now = loop.time()
        for connection in list(connections):
            deadline = getattr(connection, "_deadline", None)
            if deadline is not None and deadline < now and not connection.transport.is_closing():
                connection.transport.close()
        if connections:
            loop.call_later(SWEEP_S, sweep)
        else:
            _sweeping.discard(id(loop))

    loop.call_later(SWEEP_S, sweep)


def serve(env: Any, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, auth: str = "off",
          log_level: str = "warning", sock: socket.socket | None = None, simulator: Any = None,
          policy: ControlPolicy | None = None, access_log: bool = False) -> None:
    """Run until interrupted. uvloop and httptools are used when installed (uvicorn[standard]).

    Pass ``sock`` (from :func:`bind`) to serve on an already bound socket, ``simulator`` for a
    configured :class:`~simulator.service.simulator.Simulator` (default: one for ``env`` and ``auth``)."""
    from simulator.service.simulator import Simulator

    sim = simulator if simulator is not None else Simulator(env, auth=auth)
    sock = sock if sock is not None else bind(host, port)
    policy = policy or ControlPolicy.for_server(bind_host=host, auth=sim.auth)
    protocol = _timed_protocol()
    # X-Forwarded-For/-Proto are applied to the control API alone (the simulated API reads no
    # client address or scheme): uvicorn's middleware around every request costs a coroutine
    def proxied(control: Any) -> Any:  # on the first control request: config is set by then
        return ProxyHeadersMiddleware(control, trusted_hosts=config.forwarded_allow_ips)

    app = build_app(sim, policy=policy, log_requests=access_log, wrap_control=proxied)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on", server_header=False,
                            date_header=False, timeout_keep_alive=KEEP_ALIVE_S, proxy_headers=False,
                            **({"http": protocol} if protocol is not None else {}))
    if access_log:  # after uvicorn has configured its own loggers
        _log_access_to_stderr()
    uvicorn.Server(config).run(sockets=[sock])


def _log_access_to_stderr() -> None:
    logger = logging.getLogger("simulator.access")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

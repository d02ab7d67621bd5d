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
from typing import Any

import uvicorn

from .asgi import build_app
from .control_access import ControlPolicy
from .errors import SimulatorError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
HEAD_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 60.0
KEEP_ALIVE_S = 5

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
        """Closes a connection whose request head or body trickles in past its deadline."""

        _read_deadline: asyncio.TimerHandle | None = None

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._read_deadline = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._read_deadline is not None:
                self._read_deadline.cancel()
                self._read_deadline = None

        def _too_slow(self) -> None:
            self._read_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(head_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._read_deadline is None:
                self._arm(head_timeout)

        def on_headers_complete(self) -> None:
            self._arm(body_timeout)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

    return TimedHttpToolsProtocol


def serve(env: Any, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, auth: str = "off",
          log_level: str = "warning", sock: socket.socket | None = None, simulator: Any = None,
          policy: ControlPolicy | None = None, access_log: bool = False) -> None:
    """Run until interrupted. uvloop and httptools are used when installed (uvicorn[standard]).

    Pass ``sock`` (from :func:`bind`) to serve on an already bound socket, ``simulator`` for a
    configured :class:`~simulator.service.Simulator` (default: one for ``env`` and ``auth``)."""
    from .service import Simulator

    sim = simulator if simulator is not None else Simulator(env, auth=auth)
    sock = sock if sock is not None else bind(host, port)
    policy = policy or ControlPolicy.for_server(bind_host=host, auth=sim.auth)
    app = build_app(sim, policy=policy, log_requests=access_log)
    protocol = _timed_protocol()
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on", server_header=False,
                            date_header=False, timeout_keep_alive=KEEP_ALIVE_S,
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

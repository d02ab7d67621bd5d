"""Serve an environment over HTTP with uvicorn (loopback by default)."""

from __future__ import annotations

import logging

import uvicorn

from .asgi import build_app
from .environment import Environment
from .service import Simulator

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def serve(env: Environment, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, auth: str = "off",
          log_level: str = "warning") -> None:
    """Run until interrupted. uvloop and httptools are used when installed (uvicorn[standard])."""
    app = build_app(Simulator(env, auth=auth))
    logging.getLogger(__name__).info("serving %s on http://%s:%d", env.name, host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
                server_header=False, date_header=False)

"""The messages every simulated environment speaks: one request in, one response out, and the
session a request belongs to. The bottom of the simulator's layers, beside ``errors``: the
service, the state, the sandboxes and the servers all pass these around."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

SESSION_HEADER = "x-sim-session"
DEFAULT_SESSION = "default"


@dataclass(frozen=True, slots=True)
class SimRequest:
    method: str  # upper case
    path: str  # concrete path, e.g. "/pet/12" (with or without the spec's base path)
    query: tuple[tuple[str, str], ...] = ()  # in order, repeated keys allowed
    headers: tuple[tuple[str, str], ...] = ()  # names lower case
    body: bytes = b""

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": [list(pair) for pair in self.query],
            "headers": [list(pair) for pair in self.headers],
            "body": self.body.decode("utf-8", "replace"),
        }


@dataclass(frozen=True, slots=True)
class SimResponse:
    status: int
    headers: tuple[tuple[str, str], ...]  # names lower case; content-type first when a body exists
    body: bytes

    @property
    def content_type(self) -> str:
        for name, value in self.headers:
            if name == "content-type":
                return value
        return ""

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

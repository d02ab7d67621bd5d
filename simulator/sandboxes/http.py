"""A sandbox reached over HTTP: a local uvicorn process or a container."""

from __future__ import annotations

import os
from typing import Any

import httpx

from simulator.errors import SessionGone, SimulatorError, UnknownSnapshot
from simulator.messages import DEFAULT_SESSION, SESSION_HEADER, SimRequest, SimResponse

# headers the HTTP server adds on its own; the simulator's response is the rest
_TRANSPORT_HEADERS = frozenset({"date", "server", "content-length", "transfer-encoding", "connection"})
ADMIN_TOKEN_ENV = "TOOLGRAD_SIM_ADMIN_TOKEN"
ADMIN_HEADER = "x-sim-admin-token"


class SandboxUnreachable(SimulatorError):
    """The server behind an HTTP sandbox does not answer."""


class HTTPSandbox:
    """A :class:`~simulator.sandboxes.protocol.Sandbox` talking to a simulator server at ``base_url``.

    Control calls carry ``admin_token`` (default: ``$TOOLGRAD_SIM_ADMIN_TOKEN``) when there is
    one: a server beyond loopback or with enforced auth needs it (see ``simulator.serving.control_access``)."""

    def __init__(self, base_url: str, name: str = "", *, timeout: float = 30.0,
                 admin_token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, timeout=timeout)
        token = admin_token or os.environ.get(ADMIN_TOKEN_ENV) or ""
        self._control_headers = {ADMIN_HEADER: token} if token else {}
        self._fingerprint: dict[str, Any] | None = None
        self.name = name or self.fingerprint().get("env", "")

    def _call(self, method: str, path: str, session: str, **kwargs: Any) -> httpx.Response:
        headers = {SESSION_HEADER: session, **kwargs.pop("headers", {})}
        try:
            return self.client.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise SandboxUnreachable(f"{self.base_url}: {type(exc).__name__}: {exc}") from exc

    def _control(self, method: str, action: str, session: str, *,
                 problems: dict[int, SimulatorError] | None = None, **kwargs: Any) -> Any:
        """A control call's JSON answer. A problem status raises what ``problems`` maps it to
        (by default an evicted session, HTTP 410, raises :class:`SessionGone`, as the in-process
        sandbox does), any other a :class:`SimulatorError`."""
        if method == "POST" and "json" not in kwargs:
            kwargs["json"] = {}  # state-changing control calls must be JSON
        kwargs["headers"] = {**self._control_headers, **kwargs.get("headers", {})}
        resp = self._call(method, f"/_sim/{action}", session, **kwargs)
        known = problems if problems is not None else {410: SessionGone("session", session)}
        if resp.status_code in known:
            raise known[resp.status_code]
        if resp.status_code >= 400:
            raise SimulatorError(f"{self.base_url}/_sim/{action}: HTTP {resp.status_code}: {resp.text}")
        return resp.json()

    def fingerprint(self) -> dict[str, Any]:
        if self._fingerprint is None:
            self._fingerprint = dict(self._control("GET", "health", DEFAULT_SESSION)["fingerprint"])
        return dict(self._fingerprint)

    def request(self, request: SimRequest, *, session: str = DEFAULT_SESSION) -> SimResponse:
        # headers go as given; the raw path travels unchanged (httpx keeps percent-escapes)
        url = httpx.URL(self.base_url + request.path, params=list(request.query) or None)
        headers = [(SESSION_HEADER, session), *((n, v) for n, v in request.headers if n != SESSION_HEADER)]
        try:
            resp = self.client.send(
                self.client.build_request(request.method, url, headers=headers, content=request.body or None)
            )
        except httpx.TransportError as exc:
            raise SandboxUnreachable(f"{self.base_url}: {type(exc).__name__}: {exc}") from exc
        out = [(n.lower(), v) for n, v in resp.headers.multi_items() if n.lower() not in _TRANSPORT_HEADERS]
        return SimResponse(resp.status_code, tuple(out), resp.content)

    def state_hash(self, session: str = DEFAULT_SESSION) -> str:
        return str(self._control("GET", "state", session)["hash"])

    def snapshot(self, session: str = DEFAULT_SESSION) -> str:
        return str(self._control("POST", "snapshot", session)["snapshot"])

    def restore(self, snapshot_id: str, session: str = DEFAULT_SESSION) -> None:
        # restoring revives an evicted session, so a 410 here is about the snapshot
        problems = {404: UnknownSnapshot(snapshot_id), 410: SessionGone("snapshot", snapshot_id)}
        self._control("POST", "restore", session, problems=problems, json={"snapshot": snapshot_id})

    def reset(self, session: str = DEFAULT_SESSION) -> None:
        self._control("POST", "reset", session)

    def drop(self, session: str) -> None:
        self._control("DELETE", "session", session)

    def forget_snapshots(self) -> None:
        """Deletes nothing: the server bounds its snapshots itself (least recently used), and a
        snapshot id is the state hash, shared by every client of the server that stored the same
        state, so deleting one could pull it from under another client's fork."""

    def journal(self, session: str = DEFAULT_SESSION) -> list[dict[str, Any]]:
        """Every entry the server's journal ring still holds, read a page at a time."""
        entries: list[dict[str, Any]] = []
        after = -1
        while True:
            page = self._control("GET", "journal", session, params={"after": after, "limit": 1000})
            entries += page["entries"]
            if page.get("next_after") is None:
                return entries
            after = page["next_after"]

    def close(self) -> None:
        self.client.close()

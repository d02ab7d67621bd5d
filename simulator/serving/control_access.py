"""Who may use the ``/_sim`` control API, and how a request proves it (pure; no framework).

The control plane is *open* on a loopback-bound server without enforced auth and without an
admin token: every local process is trusted with every session. It is *closed* whenever the
server listens beyond loopback, auth is enforced, or an admin token is configured; then

* the admin token (``X-Sim-Admin-Token``) may act on any session and read usage;
* without it, a request acts only on its own session (``X-Sim-Session``), and under enforced
  auth only when its API credentials are those that claimed that session; with auth off a
  closed plane answers 401 to anyone without the token.

Whatever the mode, every control request must name an allowed ``Host`` (loopback names, the
bound address, ``--allowed-host``: a DNS-rebinding page names its own), and a state-changing
one must not come from a foreign ``Origin`` and, for POST, must be ``application/json`` (a body
a cross-site form or ``fetch`` without a preflight cannot send).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

ADMIN_HEADER = "x-sim-admin-token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AccessDenied(Exception):
    """A control request refused: the HTTP status, a title and what to do."""

    def __init__(self, status: int, title: str, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})


def is_loopback(host: str) -> bool:
    """True for a loopback address or ``localhost`` (the only names never reachable from elsewhere)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str:
    """The host part of a ``Host`` header value (``[::1]:8000`` -> ``::1``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass(frozen=True, slots=True)
class ControlPolicy:
    """The control plane's settings for one server."""

    closed: bool = False
    admin_token: str | None = None
    allowed_hosts: frozenset[str] = LOOPBACK_NAMES
    token_generated: bool = field(default=False, compare=False)  # the CLI prints a generated token

    @classmethod
    def for_server(cls, *, bind_host: str, auth: str, admin_token: str | None = None,
                   allowed_hosts: Iterable[str] = ()) -> ControlPolicy:
        """Closed beyond loopback, under enforced auth, or when a token is given; a closed plane
        without a token gets a random one (the caller must show it to the operator)."""
        token = admin_token or None
        closed = token is not None or auth == "enforce" or not is_loopback(bind_host)
        generated = closed and token is None
        if generated:
            token = secrets.token_urlsafe(32)
        hosts = set(LOOPBACK_NAMES) | {h.strip().lower() for h in allowed_hosts if h.strip()}
        if bind_host not in ("0.0.0.0", "::", ""):
            hosts.add(host_name(bind_host))
        return cls(closed, token, frozenset(hosts), generated)

    # -- checks ---------------------------------------------------------------------------

    def check_host(self, headers: Mapping[str, str]) -> None:
        host = host_name(headers.get("host", ""))
        if host not in self.allowed_hosts:
            raise AccessDenied(403, "Forbidden", f"the control API does not answer for Host {host!r}; "
                               "add it with --allowed-host if this server is reached by that name")

    def check_unsafe(self, method: str, headers: Mapping[str, str]) -> None:
        """Cross-site request forgery: a state change needs a same-origin (or no) Origin and JSON."""
        if method not in UNSAFE_METHODS:
            return
        origin = headers.get("origin")
        if origin is not None and not self._same_origin(origin, headers.get("host", "")):
            raise AccessDenied(403, "Forbidden", f"a state-changing control call from Origin {origin!r} is "
                               "refused (cross-site requests cannot change a sandbox)")
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise AccessDenied(403, "Forbidden", "a cross-site state-changing control call is refused")
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if method == "POST" and media != "application/json":
            raise AccessDenied(415, "Unsupported Media Type", "state-changing control calls must be "
                               f"'Content-Type: application/json' (got {media or 'none'!r}); send {{}} "
                               "when there is nothing to say")

    def _same_origin(self, origin: str, host: str) -> bool:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed frames, file:) and anything odd
        if parts.netloc.lower() == host.strip().lower():
            return True
        extra = self.allowed_hosts - LOOPBACK_NAMES
        return (parts.hostname or "") in extra

    def is_admin(self, headers: Mapping[str, str]) -> bool:
        """True with the right token, or on an open plane with no token configured;
        :class:`AccessDenied` (401) for a wrong or empty token."""
        given = headers.get(ADMIN_HEADER)
        if self.admin_token is None and not self.closed:
            return True
        if given is None:
            return False
        if self.admin_token is None or not given or not hmac.compare_digest(given.encode(), self.admin_token.encode()):
            raise AccessDenied(401, "Unauthorized", "wrong admin token", self.challenge())
        return True

    def challenge(self) -> dict[str, str]:
        return {"www-authenticate": f'ApiKey realm="toolgrad-sim control", name="{ADMIN_HEADER}", in="header"'}

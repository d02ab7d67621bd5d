"""Checking a request's credentials against an operation's OpenAPI ``security`` requirements.

Under ``--auth enforce`` a request is let through when it satisfies one of the operation's
requirement objects (alternatives), and it satisfies one when every scheme that object names
(a combination) carries a credential equal to a configured value:

* ``apiKey``: the named header, query parameter or cookie holds a configured key;
* ``http`` / ``bearer``, ``oauth2``, ``openIdConnect``: ``Authorization: Bearer <token>``;
* ``http`` / ``basic``: ``Authorization: Basic base64(user:password)``, compared as ``user:password``;
* any other ``http`` scheme: ``Authorization: <scheme> <credentials>``.

Authentication scheme names are case-insensitive (RFC 9110 section 11.1), an empty credential
is never valid, and values are compared in constant time. ``mutualTLS`` can never be satisfied
here (TLS ends before the simulator). A refused request gets a 401 whose ``WWW-Authenticate``
names every scheme that would have been accepted.

Configured values come from env.yaml (``auth: {credentials: {NAME: VALUE or [VALUES]}}``) and
from ``--credential NAME=VALUE``; NAME is the security scheme's name in the spec.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from simulator.spec.model import Operation

Credentials = Mapping[str, tuple[str, ...]]
_BEARER_KINDS = ("oauth2", "openIdConnect")


class CredentialError(ValueError):
    """A configured credential that names no scheme of the spec, or is empty."""


@dataclass(frozen=True, slots=True)
class RequestCredentials:
    """What one request carries that a scheme could take a credential from."""

    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, list[str]]
    cookies: Mapping[str, str]

    @classmethod
    def of(cls, headers: Mapping[str, str], query: Iterable[tuple[str, str]]) -> RequestCredentials:
        by_name: dict[str, list[str]] = {}
        for name, value in query:
            by_name.setdefault(name, []).append(value)
        return cls(headers, by_name, parse_cookies(headers.get("cookie", "")))


def parse_cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value.strip()
    return out


def parse_authorization(value: str) -> tuple[str, str]:
    """(scheme in lower case, credentials) of an ``Authorization`` header value."""
    scheme, _, rest = value.strip().partition(" ")
    return scheme.lower(), rest.strip()


def check_credentials(schemes: Mapping[str, dict[str, Any]], credentials: Credentials) -> dict[str, tuple[str, ...]]:
    """The configured credentials, validated against the spec's schemes (CredentialError)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, values in credentials.items():
        if name not in schemes:
            known = ", ".join(sorted(schemes)) or "none"
            raise CredentialError(f"credential {name!r} names no security scheme of the spec (schemes: {known})")
        kept = tuple(v for v in values if v)
        if not kept:
            raise CredentialError(f"credential {name!r} is empty")
        out[name] = kept
    return out


class Authenticator:
    """Decides whether a request may call an operation; pure, no I/O."""

    def __init__(self, schemes: Mapping[str, dict[str, Any]], credentials: Credentials, realm: str) -> None:
        self.schemes = dict(schemes)
        self.credentials = check_credentials(schemes, credentials)
        self.realm = realm.replace('"', "'")

    def allows(self, op: Operation, request: RequestCredentials) -> bool:
        """True when ``op`` asks for nothing or ``request`` satisfies one of its requirements."""
        if not op.security:
            return True
        return any(all(self.presents(name, request) for name in requirement) for requirement in op.security)

    def presents(self, name: str, request: RequestCredentials) -> bool:
        """The request carries a configured credential for scheme ``name``."""
        scheme = self.schemes.get(name)
        accepted = self.credentials.get(name, ())
        if scheme is None or not accepted:
            return False
        given = presented_value(scheme, request)
        return bool(given) and any(hmac.compare_digest(given.encode(), v.encode()) for v in accepted)

    def principal(self, request: RequestCredentials) -> frozenset[str]:
        """Digests of every valid credential the request carries (which client it is)."""
        return frozenset(
            hashlib.sha256(f"{name}\0{presented_value(self.schemes[name], request)}".encode()).hexdigest()[:32]
            for name in sorted(self.credentials) if self.presents(name, request)
        )

    def challenge(self, op: Operation) -> str:
        """The ``WWW-Authenticate`` value for a refused call of ``op``: one challenge per scheme."""
        seen: list[str] = []
        for requirement in op.security:
            for name in requirement:
                text = self._challenge_for(self.schemes.get(name, {}))
                if text not in seen:
                    seen.append(text)
        return ", ".join(seen) or f'Bearer realm="{self.realm}"'

    def _challenge_for(self, scheme: dict[str, Any]) -> str:
        kind = scheme.get("type")
        if kind == "apiKey":
            return f'ApiKey realm="{self.realm}", name="{scheme.get("name", "")}", in="{scheme.get("in", "header")}"'
        if kind == "http":
            return f'{str(scheme.get("scheme", "bearer")).capitalize()} realm="{self.realm}"'
        return f'Bearer realm="{self.realm}"'


def presented_value(scheme: dict[str, Any], request: RequestCredentials) -> str:
    """The credential the request offers for ``scheme`` ("" when it offers none)."""
    kind = scheme.get("type")
    if kind == "apiKey":
        name = str(scheme.get("name", ""))
        where = scheme.get("in", "header")
        if where == "query":
            values = request.query.get(name, [])
            return values[0] if len(values) == 1 else ""
        if where == "cookie":
            return request.cookies.get(name, "")
        return request.headers.get(name.lower(), "").strip()
    if kind not in ("http", *_BEARER_KINDS):
        return ""  # mutualTLS and unknown types: never satisfied
    auth_scheme, given = parse_authorization(request.headers.get("authorization", ""))
    wanted = str(scheme.get("scheme", "bearer")).lower() if kind == "http" else "bearer"
    if auth_scheme != wanted:
        return ""
    return decode_basic(given) if wanted == "basic" else given


def decode_basic(token: str) -> str:
    """``user:password`` from a Basic token ("" when it is not base64 of UTF-8 with a colon)."""
    try:
        text = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""
    return text if ":" in text else ""


def parse_credential_flags(values: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``NAME=VALUE`` flags -> name -> values (a name may be given more than once)."""
    out: dict[str, list[str]] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value:
            raise CredentialError(f"--credential {item!r}: expected NAME=VALUE with a non-empty value")
        out.setdefault(name.strip(), []).append(value)
    return {k: tuple(v) for k, v in out.items()}


def merge_credentials(*sources: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for source in sources:
        for name, values in source.items():
            kept = out.setdefault(name, [])
            kept.extend(v for v in values if v not in kept)
    return {k: tuple(v) for k, v in out.items()}

"""A content-addressed record/replay cache for model exchanges.

The key of an exchange is the sha256 of the canonical JSON (sorted keys, no whitespace) of the
request as the *caller* made it: model, messages, tools, tool_choice, the JSON schema asked
for, temperature, max_tokens. The server's address is not part of it (a local server gets a
new port each run), and neither is how the backend had to phrase the request on the wire (which
structured-output format the server took, a ``tool_choice`` fallback): those are recorded in the
entry, so a replay needs neither the server nor any knowledge of what it supports.

An entry is one JSON file, ``<root>/<key[:2]>/<key>.json``, written atomically (a temporary
file in the same folder, then :func:`os.replace`), so concurrent writers and a killed run never
leave a torn file. It holds either a response or a *deterministic* failure (the model's output
stayed invalid after the repair turns), so a replay fails exactly where the recorded run did.
Transport failures (timeouts, a dead server) are never recorded.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

from simulator.canonical import canonical_sha256

CACHE_VERSION = "1"

log = logging.getLogger(__name__)


def request_key(request: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``request``."""
    return canonical_sha256(request)


class ResponseCache:
    """Entries under ``root``; safe to share between threads and processes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry stored under ``key``, or None. An unreadable entry counts as a miss."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            entry = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning("ignoring unreadable cache entry %s", path)
            return None
        if not isinstance(entry, dict) or entry.get("version") != CACHE_VERSION:
            log.warning("ignoring cache entry %s of another format version", path)
            return None
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store ``entry`` (JSON-serialisable) under ``key``; the bytes depend only on the entry."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = orjson.dumps({**entry, "version": CACHE_VERSION, "key": key},
                           option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json"))

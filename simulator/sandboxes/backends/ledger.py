"""The ledger: a small JSON file listing the services `toolgrad sim up` started.

It lets `toolgrad sim down` and `toolgrad sim status`, run as later processes, find what an
earlier `up` left running. Writes are atomic (write a temp file, rename) and serialised with
an advisory lock, so two CLI invocations do not lose each other's entries.

Where it lives: ``$TOOLGRAD_STATE_DIR``, else ``$XDG_RUNTIME_DIR/toolgrad``, else the user
cache dir (``$XDG_CACHE_HOME/toolgrad`` or ``~/.cache/toolgrad``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .base import ServiceHandle

SCHEMA_VERSION = 1
FILE_NAME = "services.json"


def state_dir() -> Path:
    """The directory holding the ledger and the local backend's logs (created on demand)."""
    explicit = os.environ.get("TOOLGRAD_STATE_DIR")
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "toolgrad"
    return cache_dir()


def cache_dir() -> Path:
    """The user cache dir for toolgrad (``$TOOLGRAD_CACHE_DIR`` overrides)."""
    explicit = os.environ.get("TOOLGRAD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "toolgrad"


def ledger_key(directory: Path | None = None) -> str:
    """A short id of a ledger (its directory), stamped on the services recorded in it.

    Lets `down` find a ledger's services when the file is lost, without touching services that
    belong to another ledger (another user, or a test with its own TOOLGRAD_STATE_DIR).
    """
    path = (directory if directory is not None else state_dir()).resolve()
    return hashlib.sha256(str(path).encode()).hexdigest()[:12]


class Ledger:
    """The services recorded as up, keyed by (backend, ident)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else state_dir()
        self.path = self.directory / FILE_NAME

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / (FILE_NAME + ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            # A damaged ledger must not stop `down` from cleaning up: start again from empty.
            return []
        entries = data.get("services", []) if isinstance(data, dict) else []
        return [entry for entry in entries if isinstance(entry, dict)]

    def _write(self, entries: list[dict[str, Any]]) -> None:
        entries = sorted(
            entries, key=lambda e: (str(e.get("backend")), str(e.get("name")), str(e.get("ident")))
        )
        text = json.dumps({"schema_version": SCHEMA_VERSION, "services": entries}, indent=2, sort_keys=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.chmod(0o600)  # it may hold the admin tokens of containers' control APIs
        os.replace(tmp, self.path)

    def entries(self) -> list[dict[str, Any]]:
        """Raw entries: a handle's fields plus backend-specific extras (e.g. a local process's start time)."""
        with self._locked():
            return self._read()

    def handles(self, backend: str | None = None) -> list[ServiceHandle]:
        return [
            ServiceHandle.from_json(entry)
            for entry in self.entries()
            if backend is None or entry.get("backend") == backend
        ]

    def add(self, handles: Sequence[ServiceHandle], extras: dict[str, dict[str, Any]] | None = None) -> None:
        extras = extras or {}
        with self._locked():
            entries = self._read()
            keys = {(h.backend, h.ident) for h in handles}
            entries = [e for e in entries if (e.get("backend"), e.get("ident")) not in keys]
            for handle in handles:
                entries.append({**extras.get(handle.ident, {}), **handle.to_json()})
            self._write(entries)

    def remove(self, handles: Sequence[ServiceHandle]) -> None:
        keys = {(h.backend, h.ident) for h in handles}
        with self._locked():
            if not self.path.exists():
                return
            self._write([e for e in self._read() if (e.get("backend"), e.get("ident")) not in keys])

    def extra(self, handle: ServiceHandle, key: str) -> Any:
        for entry in self.entries():
            if entry.get("backend") == handle.backend and entry.get("ident") == handle.ident:
                return entry.get(key)
        return None

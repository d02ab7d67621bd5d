"""A dataset's traces sidecar (``<data>.traces.jsonl``), read once for the trace check.

The certificate records the sidecar's sha256 next to the verdicts of the trace check, so both
come from the same read: the lines the check compares are the bytes the digest covers. A
sidecar that changes between two reads (a second certification of the same :class:`Dataset`)
is a :class:`~benchmarks.certify.errors.DatasetError`, never a certificate that mixes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from .errors import DatasetError


class TracesSidecar:
    """The sidecar at ``path``; :attr:`present` when it is a regular file (checked once, here).

    :meth:`lines` reads it; :attr:`sha256` is the digest of every byte of that read, known once
    it reached the end (read on demand by :meth:`digest` when no check read it)."""

    __slots__ = ("path", "present", "sha256")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.present = path.is_file()
        self.sha256: str | None = None

    def lines(self) -> Iterator[bytes]:
        """Every whole line, newline included, in file order (a trailing partial line and
        anything after it are hashed, not yielded); run to its end, it records :attr:`sha256`."""
        digest = hashlib.sha256()
        whole = True
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below; a generator cannot hold `with` over the error
        except OSError as exc:
            raise DatasetError(f"{self.path}: cannot read the traces sidecar: {exc.strerror or exc}") from exc
        with fh:
            for line in fh:
                digest.update(line)
                whole = whole and line.endswith(b"\n")
                if whole:
                    yield line
        self._record(digest.hexdigest())

    def digest(self) -> str | None:
        """The sidecar's sha256 (None when there is none): the one :meth:`lines` recorded, else
        read now."""
        if not self.present:
            return None
        if self.sha256 is None:
            for _ in self.lines():
                pass
        return self.sha256

    def _record(self, found: str) -> None:
        if self.sha256 is not None and self.sha256 != found:
            raise DatasetError(f"{self.path}: the traces sidecar changed while the dataset was being "
                               "certified; certify files no one writes")
        self.sha256 = found

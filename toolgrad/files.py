"""Output files that a kill at any moment leaves valid.

A single ``write(2)`` to a regular file is not atomic under ``kill -9``: Linux checks for a fatal
signal between page copies, so a line longer than a page can stop half written. Every output of
the kit therefore changes only by :func:`os.replace` of a finished temporary file in the same
folder; a reader, or the run that resumes, sees the old content or the new, never a torn one.

:class:`LineFile` grows a JSONL file that way without rewriting it per line: pending lines are
committed (committed bytes copied in the kernel, pending lines appended, renamed over) once
the pending bytes reach 1/:data:`COPY_RATIO` of the file, so copying costs at most that many
bytes per byte written, or after :data:`COMMIT_SECONDS`, so what a reader sees is never older.
A kill loses only uncommitted lines, which a resumed run writes again.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

COPY_RATIO = 16
COMMIT_SECONDS = 1.0
FSYNC_EVERY = 64  # commits between fsyncs (and always at close): a power loss costs at most these


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files a killed process left beside ``path`` (those of live ones stay)."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
        except PermissionError:  # alive, someone else's
            pass
    return removed


@contextmanager
def _temporary_for(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, removed if the block fails before it is renamed."""
    tmp = _temporary(path)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _replace(tmp: Path, path: Path, fsync: bool) -> None:
    if fsync:
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_bytes_atomic(path: str | Path, data: bytes, *, fsync: bool = True) -> None:
    """``path`` holds ``data`` or what it held before, whenever the process dies."""
    path = Path(path)
    with _temporary_for(path) as tmp:
        tmp.write_bytes(data)
        _replace(tmp, path, fsync)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Sorted keys, two-space indent, trailing newline."""
    write_bytes_atomic(path, orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n")


def write_lines_atomic(path: str | Path, lines: Iterable[bytes]) -> None:
    """Each item of ``lines`` is one whole line, newline included."""
    path = Path(path)
    with _temporary_for(path) as tmp:
        with open(tmp, "wb") as fh:
            for line in lines:
                fh.write(line)
        _replace(tmp, path, True)


class LineFile:
    """An append-only JSONL file whose every visible state is whole lines (see the module text)."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.clock = clock
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.size = self.path.stat().st_size if self.path.exists() else 0
        self.last_commit = clock()
        self.commits = 0
        self.synced = True
        remove_stale_temporaries(self.path)

    def append(self, line: bytes) -> None:
        if not line.endswith(b"\n") or b"\n" in line[:-1]:
            raise ValueError("LineFile.append takes exactly one line ending in a newline")
        self.pending.append(line)
        self.pending_bytes += len(line)
        if self.pending_bytes * COPY_RATIO >= self.size or self.clock() - self.last_commit >= COMMIT_SECONDS:
            self.commit()

    def commit(self, *, fsync: bool = False) -> None:
        if not self.pending and not fsync:
            return
        with _temporary_for(self.path) as tmp:
            if self.size:
                shutil.copyfile(self.path, tmp)  # sendfile(2) on Linux: no copy through Python
            with open(tmp, "ab") as fh:
                fh.writelines(self.pending)
            self.synced = fsync or (self.commits + 1) % FSYNC_EVERY == 0
            _replace(tmp, self.path, self.synced)
        self.commits += 1
        self.size += self.pending_bytes
        self.pending.clear()
        self.pending_bytes = 0
        self.last_commit = self.clock()

    def close(self) -> None:
        """Commit what is pending and fsync it; the file exists afterwards, lines or not."""
        if self.pending or not self.path.exists():
            self.commit(fsync=True)
        elif not self.synced:
            with open(self.path, "rb") as fh:
                os.fsync(fh.fileno())
            self.synced = True

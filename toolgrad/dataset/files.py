"""Output files that a kill at any moment leaves valid.

A single ``write(2)`` to a regular file is not atomic under ``kill -9``: Linux checks for a fatal
signal between page copies, so a line longer than a page can stop half written. Every output of
the kit therefore changes only by :func:`os.replace` of a finished temporary file in the same
folder; a reader, or the run that resumes, sees the old content or the new, never a torn one.

:class:`LineFile` grows a JSONL file that way without rewriting it per line: pending lines are
committed (committed bytes copied in the kernel, pending lines appended, renamed over) once
the pending bytes reach 1/:data:`COPY_RATIO` of the file, so copying costs at most that many
bytes per byte written, or after :data:`COMMIT_SECONDS`, so what a reader sees is never older,
unless the last commit took more than 1/:data:`COPY_SHARE` of that: then the time rule waits
:data:`COPY_SHARE` times as long as the last commit took, so a large file still costs at most
that share of the run's time in copies (a commit per second would copy it again every second).
A kill loses only uncommitted lines, which a resumed run writes again.

:func:`exclusive_writer` makes sure one process at a time writes an output: an ``flock(2)`` on
``<output>.lock`` beside it, which holds the writer's pid and is removed when the writer is done.
The kernel releases the lock when the holder exits or dies, so a lock file left by a killed
process is stale and simply taken over.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import orjson

COPY_RATIO = 2  # a commit copies the file: at 16 a 25 MB dataset cost 0.5 s of copies, at 2 0.2 s
COMMIT_SECONDS = 1.0
COPY_SHARE = 100  # the time rule spends at most 1/COPY_SHARE of the run copying (at 20, 3-5% of an offline
# generation went to copies: its 18 MB trace sidecar costs 30 ms a copy, once a second)
FSYNC_EVERY = 64  # commits between fsyncs (and always at close): a power loss costs at most these


LOCK_SUFFIX = ".lock"


class OutputLocked(Exception):
    """Another live process holds the output's lock."""

    def __init__(self, path: Path, holder: int | None) -> None:
        self.path = path
        self.holder = holder  # its pid, when the lock file says
        who = f"process {holder}" if holder is not None else "another process"
        super().__init__(f"{path} is being written by {who} (lock {path.name}{LOCK_SUFFIX}); "
                         "wait for it to finish or write to another file")


@contextmanager
def exclusive_writer(path: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock on ``<path>.lock`` for the block (yields the lock file's path);
    :class:`OutputLocked` naming the holder's pid when another live process holds it. The lock
    file is removed when the block ends; one left by a killed holder is taken over."""
    path = Path(path)
    lock = path.with_name(path.name + LOCK_SUFFIX)
    fd = _lock_file(path, lock)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield lock
    finally:
        lock.unlink(missing_ok=True)  # while still held: no one can hold the unlinked file alone
        os.close(fd)  # releases the flock


def _lock_file(path: Path, lock: Path) -> int:
    """An open, flock-ed descriptor of the file at ``lock`` (not of one a releasing holder
    unlinked after we opened it: then we try again)."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise OutputLocked(path, int(text) if text.isdigit() else None) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


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


@contextmanager
def files_atomic(paths: Sequence[str | Path], *, skip_empty: bool = False) -> Iterator[list[BinaryIO]]:
    """A temporary file open for writing per path; when the block ends without an error each
    is fsync-ed and renamed over its path, in the order given (else all are removed). With
    ``skip_empty``, a path nothing was written to is left as it was."""
    targets = [Path(p) for p in paths]
    temporaries = [_temporary(p) for p in targets]
    handles: list[BinaryIO] = []
    try:
        for tmp in temporaries:
            handles.append(open(tmp, "wb"))  # noqa: SIM115 - closed below, all together
        yield handles
        for fh in handles:
            fh.close()
        for tmp, path in zip(temporaries, targets, strict=True):
            if not skip_empty or tmp.stat().st_size:
                _replace(tmp, path, True)
    finally:
        for fh in handles:
            fh.close()
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)


class LineFile:
    """An append-only JSONL file whose every visible state is whole lines (see the module text)."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.clock = clock
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.size = self.path.stat().st_size if self.path.exists() else 0
        self.last_commit = clock()
        self.last_cost = 0.0  # how long the last commit took, by the clock
        self.commits = 0
        self.synced = True
        remove_stale_temporaries(self.path)

    def add(self, line: bytes) -> None:
        """Make ``line`` pending without committing (:class:`LineFiles` decides when: the files
        of a dataset grow together)."""
        if not line.endswith(b"\n") or b"\n" in line[:-1]:
            raise ValueError("LineFile.add takes exactly one line ending in a newline")
        self.pending.append(line)
        self.pending_bytes += len(line)

    def due(self) -> bool:
        """Whether the pending lines should be committed now (see the module text)."""
        if self.pending_bytes * COPY_RATIO >= self.size:
            return True
        return self.clock() - self.last_commit >= max(COMMIT_SECONDS, COPY_SHARE * self.last_cost)

    def commit(self, *, fsync: bool = False) -> None:
        if not self.pending and not fsync:
            return
        started = self.clock()
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
        self.last_cost = self.last_commit - started

    def close(self) -> None:
        """Commit what is pending and fsync it; the file exists afterwards, lines or not."""
        if self.pending or not self.path.exists():
            self.commit(fsync=True)
        elif not self.synced:
            with open(self.path, "rb") as fh:
                os.fsync(fh.fileno())
            self.synced = True


class LineFiles:
    """Files grown in step, one line each per record: the dataset and its sidecars.

    A commit commits every file, in the order given, so after a kill each earlier file holds at
    least the lines of each later one: put the dataset last, and a reader (or the run that
    resumes) finds every dataset line's sidecar lines committed; sidecar lines beyond the
    dataset's are the only inconsistency a kill can leave, and resuming drops them."""

    def __init__(self, paths: Sequence[str | Path], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.files = [LineFile(path, clock=clock) for path in paths]

    def append(self, lines: Sequence[bytes]) -> None:
        """One line for each file, in the order of the paths."""
        if len(lines) != len(self.files):
            raise ValueError(f"LineFiles.append takes {len(self.files)} lines, got {len(lines)}")
        for file, line in zip(self.files, lines, strict=True):
            file.add(line)
        if any(file.due() for file in self.files):
            for file in self.files:
                file.commit()

    def close(self) -> None:
        for file in self.files:
            file.close()

"""What spec loading may read: files inside allowed folders, regular, and of a bounded size.

A spec is untrusted input. Its ``$ref`` s, and an environment's ``spec:`` path, resolve only
inside the root spec's (or environment's) own folder and the folders named in
``$TOOLGRAD_SPEC_ROOTS`` (``os.pathsep``-separated); anything else is refused *before* it is
opened (symbolic links are resolved first, so a link cannot lead out). A file is read only when
it is a regular file (never a device, a FIFO or a directory) of at most
:data:`MAX_SPEC_BYTES` (``$TOOLGRAD_MAX_SPEC_BYTES`` overrides it).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

MAX_SPEC_BYTES = 64 * 1024 * 1024
ROOTS_ENV = "TOOLGRAD_SPEC_ROOTS"
MAX_BYTES_ENV = "TOOLGRAD_MAX_SPEC_BYTES"


class ReadRefused(OSError):
    """A path outside the allowed folders, not a regular file, or too large; ``str`` says which."""


def max_spec_bytes() -> int:
    value = os.environ.get(MAX_BYTES_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else MAX_SPEC_BYTES


def extra_roots() -> tuple[str, ...]:
    """The folders ``$TOOLGRAD_SPEC_ROOTS`` allows besides a spec's own."""
    return tuple(p for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p)


def allowed_roots(own_folder: str | Path, extra: Iterable[str | Path] = ()) -> tuple[str, ...]:
    """The real paths of ``own_folder``, ``extra`` and ``$TOOLGRAD_SPEC_ROOTS``."""
    folders = [own_folder, *extra, *extra_roots()]
    return tuple(dict.fromkeys(os.path.realpath(f) for f in folders))


def is_inside(path: str | Path, roots: Iterable[str]) -> bool:
    """True when ``path`` (symbolic links resolved) lies inside one of ``roots`` (real paths)."""
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def check_inside(path: str | Path, roots: Iterable[str], what: str) -> None:
    """:class:`ReadRefused` naming ``what`` when ``path`` lies outside every root."""
    roots = tuple(roots)
    if not is_inside(path, roots):
        shown = ", ".join(roots) or "(none)"
        raise ReadRefused(f"{what} leads outside the allowed folders ({shown}); refused without "
                          f"reading it (allow another folder with ${ROOTS_ENV})")


def read_regular_file(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (default :func:`max_spec_bytes`).

    Opened without blocking (a FIFO cannot stall us) and checked on the open descriptor, so a
    file swapped after a check is still refused. :class:`ReadRefused` or :class:`OSError`."""
    limit = max_spec_bytes() if limit is None else limit
    with os.fdopen(open_regular(path), "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > limit:
            raise ReadRefused(f"{path}: {size:,} bytes, more than the {limit:,} allowed "
                              f"(${MAX_BYTES_ENV} raises the limit)")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ReadRefused(f"{path}: more than the {limit:,} bytes allowed (${MAX_BYTES_ENV} raises the limit)")
    return data


def open_regular(path: str | Path) -> int:
    """A read-only descriptor of a regular file (the caller closes it); :class:`ReadRefused`
    for anything else (``/dev/zero``, a FIFO, a directory)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ReadRefused(f"{path}: not a regular file (a device, a pipe or a directory); refused")
    return fd

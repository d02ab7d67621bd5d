"""Picklable jobs for the executor tests: top-level, so worker processes and Ray tasks import
them by name (tests/support is on the import path of every worker)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from toolgrad.loop.policy import Policy
from toolgrad.policies.offline.policy import OfflinePolicy
from toolgrad.toolbox import Toolbox


def square(x: int) -> int:
    return x * x


def pid_of(_: int) -> int:
    return os.getpid()


class FailAt:
    """``job(x)``: x, except at ``bad``, where it raises ValueError naming it."""

    def __init__(self, bad: int) -> None:
        self.bad = bad

    def __call__(self, x: int) -> int:
        if x == self.bad:
            raise ValueError(f"item {x} is bad")
        return x


class Unpicklable(Exception):
    """An exception whose constructor takes two arguments: it does not survive pickling."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


def raise_unpicklable(x: int) -> int:
    raise Unpicklable(x, 0)


class KillOnce:
    """``job(x)``: x; but the first process to run item ``at`` creates ``marker`` and kills itself
    (SIGKILL: no cleanup, no exception), as an out-of-memory kill or a lost node would."""

    def __init__(self, marker: str, at: int) -> None:
        self.marker, self.at = marker, at

    def __call__(self, x: int) -> int:
        if x == self.at:
            _kill_once(self.marker)
        return x


class KillOnceOffline:
    """The offline policy factory, except that the first worker process (never the driver,
    ``driver`` is its pid) to make a policy creates ``marker`` and kills itself."""

    def __init__(self, marker: str, driver: int) -> None:
        self.marker, self.driver = marker, driver

    def __call__(self, toolbox: Toolbox) -> Policy:
        if os.getpid() != self.driver:
            _kill_once(self.marker)
        return OfflinePolicy(toolbox)


def _kill_once(marker: str) -> None:
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # only one process wins
    except FileExistsError:
        return
    os.close(fd)
    Path(marker).write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


def thread_name(_: int) -> str:
    import threading

    return threading.current_thread().name


class RecordPidThenSleep:
    """``job(x)``: writes this process's pid into ``folder``, then sleeps a minute."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __call__(self, x: int) -> int:
        import time

        (Path(self.folder) / f"{os.getpid()}.pid").write_text(str(x))
        time.sleep(60)
        return x


class ImportedBefore:
    """``job(_)``: whether ``module`` was imported in this worker before the job ran; it names
    ``module`` as one of its ``worker_modules`` when ``preload`` is set."""

    def __init__(self, module: str, preload: bool) -> None:
        self.module, self.preload = module, preload

    @property
    def worker_modules(self) -> tuple[str, ...]:
        return (self.module,) if self.preload else ()

    def __call__(self, _: int) -> bool:
        import sys

        return self.module in sys.modules


def gc_thresholds(_: object) -> tuple[int, ...]:
    import gc

    return tuple(gc.get_threshold())

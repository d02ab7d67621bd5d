"""Local worker processes (:func:`toolgrad.executors.ordered_map`): how many by default, the fork
server they start from, which modules it imports for a job, and starting it early.

Kept apart from :mod:`toolgrad.executors` so that a command can start the server before it
imports anything heavy (this module imports only the standard library): the server's imports
then run beside the command's own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, else the core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def worker_modules(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The modules a worker needs to run ``fn``: its module (a function's, or an instance's
    class's) and those it names in ``fn.worker_modules``, if it has that (the ones it imports
    when it first runs). The fork server imports them once, so that workers do not each."""
    module = getattr(fn, "__module__", None)
    return (*([module] if module else []), *getattr(fn, "worker_modules", ()))


GC_THRESHOLDS = (10_000, 10, 10)
"""The cyclic garbage collector's thresholds in every ``toolgrad`` command and its worker
processes (the simulator's server too, which also freezes its long-lived state at start). The
default (700, 10, 10) runs a young collection every 700 net allocations and a full one every
70,000 (when the heap has grown by a quarter): an offline generation spent 5.8% of its time
collecting, three quarters of it in the middle and full collections that rescan the long-lived
environments, plans and memos. These cut that to 3.2%. A garbage cycle (the only kind of object
the collector frees) that outlives its young collection now waits for the next middle one
(every 100,000 allocations) instead of 7,000, or once old for a full one (every million at the
soonest, and only when the heap has grown by a quarter, as before)."""


def tune_gc() -> None:
    """Set :data:`GC_THRESHOLDS` for this process (a command's, or a worker's it started); not
    called by library functions: a program that imports the kit keeps its own settings."""
    import gc

    gc.set_threshold(*GC_THRESHOLDS)


def start_fork_server(modules: Iterable[str]) -> None:
    """Start the fork server that local worker processes start from now, importing ``modules``
    (:func:`worker_modules` of the job to come), so that its start-up runs alongside what this
    process does before its first :func:`~toolgrad.executors.ordered_map` with workers, instead of after it. A
    process has one fork server, started once: a later job's other modules are then imported
    by each of its workers. Nothing where there is no fork server (macOS, Windows)."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        from multiprocessing import forkserver

        forkserver.set_forkserver_preload(preload_modules(modules))
        forkserver.ensure_running()  # returns at once: the server imports while this process goes on


def preload_modules(modules: Iterable[str]) -> list[str]:
    """What the fork server imports for a job that needs ``modules``: the job runner's module
    (:mod:`toolgrad.executors`) first."""
    return ["__main__", "toolgrad.executors", *modules]

"""Where the work runs: :func:`ordered_map` applies a function to items in this process, in a pool
of local processes or as Ray tasks, and yields the results in the order of the items.

What a caller may rely on:

* **Input order, bounded.** Results come back in the order of ``items`` whatever finishes first.
  ``items`` is read lazily; at most ``window`` chunks are submitted and not yet yielded, so a
  streamed input and the results waiting for an earlier one stay bounded in memory.
* **Same results anywhere.** ``fn`` is a picklable top-level callable (a function, or an instance
  of a top-level class whose fields are settings) that depends only on its item: state a worker
  needs (sandboxes, a model client) is built inside the worker from those settings
  (:func:`process_local`) and never shared between processes. Worker processes start from a
  fork server (a single-threaded process that imported the job's modules once; forking the
  driver would copy its threads' locks), or by ``spawn`` where there is none (macOS, Windows),
  so what works here works on macOS and Ray. :func:`start_fork_server` starts that server
  early, so that its imports overlap the driver's own start.
* **Failures surface.** An exception ``fn`` raises is raised here, after the results before it
  (one that cannot be pickled becomes :class:`WorkerFailed` with its text). A worker process that
  dies (killed, out of memory) raises :class:`WorkerLost`, never a hang; Ray first retries a task
  whose worker died (:data:`RAY_RETRIES` times), and since a task's result depends only on its
  items, a retry gives the same bytes.

``threads`` runs that many items of a chunk at once in threads inside a worker (for work that
waits on a model endpoint); ``workers`` is how many processes (or Ray tasks) run at once.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from contextlib import ExitStack
from itertools import islice
from typing import Any, Generic, TypeVar

from toolgrad.fork_server import default_workers as default_workers  # where callers have always found it
from toolgrad.fork_server import preload_modules, tune_gc, worker_modules
from toolgrad.fork_server import start_fork_server as start_fork_server  # the commands start it early
from toolgrad.settings import RunIncomplete, ToolgradError

T = TypeVar("T")
R = TypeVar("R")
EXECUTORS = ("local", "ray")
RAY_RETRIES = 3  # a Ray task whose worker process died is run again this many times
DRIVER_CHECK_S = 1.0  # how often a worker process checks that its driver is alive


class WorkerLost(RunIncomplete):
    """A worker process died (killed, out of memory) and its work could not be run elsewhere."""


class WorkerFailed(RuntimeError):
    """An exception in a worker that could not be sent back as itself (its type and text)."""


def workers_or_all_cores(given: int | None) -> int:
    """The commands' ``--workers``: as given, else every core (:func:`default_workers`); the
    library's own default is 1, in process."""
    return default_workers() if given is None else given


def in_process(workers: int, executor: str) -> bool:
    """Whether :func:`ordered_map` runs the items in this process (``fn`` need not be picklable
    and may share this process's state: a connected client, a sandbox, a closure)."""
    return executor == "local" and workers <= 1


def pickle_problem(value: Any) -> Exception | None:
    """Why ``value`` cannot be sent to another process (a pickling round trip fails), or None."""
    try:
        pickle.loads(pickle.dumps(value))
    except Exception as exc:
        return exc
    return None


def check_placement(workers: int, executor: str, ray_address: str | None = None) -> None:
    """:class:`ToolgradError` (exit 2) for settings no executor can run."""
    if executor not in EXECUTORS:
        raise ToolgradError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ToolgradError(f"--workers {workers}: must be 1 or more")
    if ray_address and executor != "ray":
        raise ToolgradError("--ray-address needs --executor ray")


# -- state a worker builds once --------------------------------------------------------------------

_LOCAL: dict[Any, Any] = {}
_LOCAL_LOCK = threading.Lock()


def process_local(key: Any, build: Callable[[], R]) -> R:
    """The value built by ``build()`` for ``key`` (hashable settings), once per process: a worker's
    sandboxes or model client, reused by every item it runs."""
    with _LOCAL_LOCK:
        if key not in _LOCAL:
            _LOCAL[key] = build()
        value: R = _LOCAL[key]
        return value


# -- one chunk, in a worker ------------------------------------------------------------------------


class _Chunk(Generic[R]):
    """What a worker sends back for a chunk: the results in order, up to the first exception."""

    __slots__ = ("error", "results")

    def __init__(self, results: list[R], error: BaseException | None) -> None:
        self.results, self.error = results, error

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Chunk, (self.results, _portable(self.error)))


def _portable(error: BaseException | None) -> BaseException | None:
    """``error`` if it survives pickling as itself, else a :class:`WorkerFailed` with its text."""
    if error is None or pickle_problem(error) is None:
        return error
    return WorkerFailed(f"{type(error).__name__}: {error}")


def run_chunk(fn: Callable[[T], R], chunk: list[T], threads: int = 1) -> _Chunk[R]:
    """``fn`` over ``chunk`` (``threads`` at a time), in order, stopping at the first exception."""
    results: list[R] = []
    if threads <= 1 or len(chunk) <= 1:
        for item in chunk:
            try:
                results.append(fn(item))
            except Exception as exc:
                return _Chunk(results, exc)
        return _Chunk(results, None)
    with ThreadPoolExecutor(max_workers=min(threads, len(chunk)), thread_name_prefix="toolgrad-item") as pool:
        futures = [pool.submit(fn, item) for item in chunk]
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:
                for rest in futures:
                    rest.cancel()
                return _Chunk(results, exc)
    return _Chunk(results, None)


# -- the driver --------------------------------------------------------------------------------------


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int = 1, executor: str = "local",
    ray_address: str | None = None, threads: int = 1, chunksize: int = 1, window: int | None = None,
) -> Iterator[R]:
    """``fn(item)`` for every item, yielded in the order of ``items``.

    ``executor="local"`` with ``workers`` 1 runs in this process (``threads`` at a time when more
    than 1); with more, in a pool of that many processes. ``executor="ray"`` runs chunks as Ray
    tasks on the cluster at ``ray_address`` (``ray.init(address=...)``), or on a local Ray of
    ``workers`` CPUs when none is given or running. Items go in chunks of ``chunksize`` (fewer
    round trips for short items; in a worker, at least ``threads`` items, run in that many
    threads); ``window`` (default: four chunks per worker) bounds the chunks in flight. Closing
    the iterator early cancels what has not started.
    """
    check_placement(workers, executor, ray_address)
    if in_process(workers, executor):
        chunks = _chunks(iter(items), max(1, chunksize))
        if threads <= 1:
            for chunk in chunks:
                yield from (fn(item) for item in chunk)
            return
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="toolgrad-item") as pool:
            yield from _in_order(lambda chunk: pool.submit(run_chunk, fn, chunk), chunks, window or threads * 4)
        return
    chunks = _chunks(iter(items), max(1, chunksize, threads))  # a worker's threads share its chunk
    with ExitStack() as stack:
        submit = (_ray_submitter(fn, workers, ray_address, threads, stack) if executor == "ray"
                  else _process_submitter(fn, workers, threads, stack))
        yield from _in_order(submit, chunks, window or workers * 4)


def _chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while chunk := list(islice(items, size)):
        yield chunk


def _in_order(submit: Callable[[list[T]], Future[_Chunk[R]]], chunks: Iterator[list[T]], window: int) -> Iterator[R]:
    pending: deque[Future[_Chunk[R]]] = deque()
    try:
        for chunk in chunks:
            pending.append(submit(chunk))
            if len(pending) >= window:
                yield from _results(pending.popleft())
        while pending:
            yield from _results(pending.popleft())
    finally:
        for future in pending:
            future.cancel()


def _results(future: Future[_Chunk[R]]) -> Iterator[R]:
    try:
        chunk = future.result()
    except BrokenProcessPool as exc:
        raise WorkerLost(f"a worker process died ({exc})") from None
    except Exception as exc:
        lost = _ray_lost(exc)
        if lost is not None:
            raise lost from None
        raise
    yield from chunk.results
    if chunk.error is not None:
        raise chunk.error


def _process_submitter(fn: Callable[[T], R], workers: int, threads: int,
                       stack: ExitStack) -> Callable[[list[T]], Future[_Chunk[R]]]:
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_start_context(fn), initializer=_start_worker,
                               initargs=(dict(os.environ), os.getpid()))
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)

    def submit(chunk: list[T]) -> Future[_Chunk[R]]:
        try:
            return pool.submit(run_chunk, fn, chunk, threads)
        except BrokenProcessPool as exc:  # a worker died while later chunks were still being sent
            failed: Future[_Chunk[R]] = Future()
            failed.set_exception(exc)
            return failed

    return submit


def _start_worker(environ: dict[str, str], driver: int) -> None:
    """A worker forked from the fork server starts with the server's environment: take the
    driver's, as it is now (a model's API key set after the server started, for one). And it
    exits when the driver dies (``kill -9``): it would otherwise wait on the task queue for ever,
    since it holds that queue's write end itself."""
    os.environ.clear()
    os.environ.update(environ)
    tune_gc()  # as the command's own process does
    threading.Thread(target=_exit_with, args=(driver,), name="toolgrad-driver-watch", daemon=True).start()


def _exit_with(driver: int) -> None:
    while True:
        try:
            os.kill(driver, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # alive, someone else's: the pid was reused, so the driver is gone
            os._exit(1)
        time.sleep(DRIVER_CHECK_S)


def _start_context(fn: Callable[..., Any]) -> Any:
    """How worker processes start: from the fork server (a fork of a single-threaded process, so
    no lock of this process's threads is copied held), which imports :func:`worker_modules`
    when this call starts it, or spawned where there is no fork server (macOS, Windows)."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload_modules(worker_modules(fn)))  # no effect when it runs already
    return context


# -- Ray -------------------------------------------------------------------------------------------


def _ray_submitter(fn: Callable[[T], R], workers: int, address: str | None, threads: int,
                   stack: ExitStack) -> Callable[[list[T]], Future[_Chunk[R]]]:
    ray = import_ray()
    if not ray.is_initialized():
        quiet = logging.ERROR  # Ray's start-up notices would interleave with the command's own output
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=quiet)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=quiet,
                     runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(_import_path())}})
        stack.callback(ray.shutdown)
    task = ray.remote(max_retries=RAY_RETRIES, num_cpus=1)(run_chunk)
    shared = ray.put(fn)
    return lambda chunk: task.remote(shared, chunk, threads).future()  # type: ignore[no-any-return]


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ToolgradError("--executor ray needs Ray: pip install 'toolgrad-kit[ray]'") from None
    return ray


def _import_path() -> list[str]:
    """This process's import path, so a local Ray's workers import the same modules (a checkout,
    a test's support package) as the driver."""
    import sys

    return [p for p in sys.path if p and os.path.isdir(p)]


def _ray_lost(exc: BaseException) -> WorkerLost | None:
    """A :class:`WorkerLost` for Ray's "the worker or node died" errors (after its retries)."""
    module = type(exc).__module__
    if not module.startswith("ray"):
        return None
    name = type(exc).__name__
    if name in {"WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "ObjectLostError", "RayActorError",
                "TaskUnschedulableError", "LocalRayletDiedError", "RaySystemError"}:
        return WorkerLost(f"a Ray worker was lost after {RAY_RETRIES} retries ({name}: {exc})")
    return None

"""Samples run concurrently and come back in seed order.

:func:`in_seed_order` runs ``work(seed)`` on a thread pool and yields the results in the order of
the seeds, holding early completions in a bounded window; :class:`Workers` gives each thread its
own toolbox (the in-process simulator is not thread-safe); :class:`SeedStopped` is how a seed
stops the whole run (a model failure: later seeds must not be written past it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from toolgrad.backends.base import CacheMiss
from toolgrad.loop.sample import SampleOutcome
from toolgrad.settings import RunIncomplete, ToolgradError
from toolgrad.toolbox import Toolbox


class Workers:
    """One toolbox per worker thread: the in-process simulator is not thread-safe."""

    def __init__(self, refs: list[str], first: Toolbox) -> None:
        self.refs = refs
        self.local = threading.local()
        self.local.toolbox = first  # the calling thread's (used when concurrency is 1)

    def toolbox(self) -> Toolbox:
        box = getattr(self.local, "toolbox", None)
        if box is None:
            box = self.local.toolbox = Toolbox.in_process(self.refs)
        return box


class SeedStopped(RunIncomplete):
    """Seed ``seed`` hit a model failure that stops the run; seeds from it on did not run. A
    replay-only cache miss is bad input (exit 2: the cache does not hold this run); a failed
    endpoint is an incomplete run (exit 1)."""

    def __init__(self, seed: int, cause: Exception) -> None:
        super().__init__(f"seed {seed}: {cause}")
        self.seed = seed
        self.exit_code = 2 if isinstance(cause, CacheMiss) else 1


def in_seed_order(work: Callable[[int], SampleOutcome], seeds: list[int], concurrency: int) -> Iterator[SampleOutcome]:
    """``work(seed)`` for every seed, ``concurrency`` at a time, yielded in the order of ``seeds``."""
    if concurrency <= 1:
        for seed in seeds:
            yield work(seed)
        return
    window = concurrency * 4  # completed-but-unwritten results are bounded by this
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="toolgrad-sample")
    inflight: dict[Future[SampleOutcome], int] = {}
    ready: dict[int, SampleOutcome] = {}
    submitted = 0
    emitted = 0
    try:
        while emitted < len(seeds):
            while submitted < len(seeds) and submitted - emitted < window and len(inflight) < concurrency * 2:
                inflight[pool.submit(work, seeds[submitted])] = seeds[submitted]
                submitted += 1
            finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in finished:
                seed = inflight.pop(future)
                try:
                    ready[seed] = future.result()
                except ToolgradError:
                    raise
                except Exception as exc:
                    raise RuntimeError(f"seed {seed}: {type(exc).__name__}: {exc}") from exc
            while emitted < len(seeds) and seeds[emitted] in ready:
                yield ready.pop(seeds[emitted])
                emitted += 1
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

"""Samples run in parallel and come back in seed order.

:class:`SeedJob` is one seed's work as a picklable value (the environments, the policy factory,
the generator config, the provenance its record carries), so
:func:`toolgrad.executors.ordered_map` can run it in this process, in local worker processes or
as Ray tasks and hand the outcomes back in seed order, each as :class:`SeedLines`: the lines the
writer appends, encoded where the seed ran (a worker sends bytes back, not the records, which
cost the driver more to unpickle than to write);
:class:`Workers` gives each thread of a process its own toolbox (the in-process simulator is not
thread-safe); :class:`SeedStopped` is how a seed stops the whole run (a model failure: later
seeds must not be written past it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from toolgrad.backends.base import CacheMiss, EndpointError
from toolgrad.executors import process_local
from toolgrad.loop.policy import Policy
from toolgrad.loop.sample import GeneratorConfig, SampleOutcome, run_sample
from toolgrad.records import Cost, Provenance
from toolgrad.settings import RunIncomplete, ToolgradError
from toolgrad.toolbox import Toolbox

from .lines import record_lines

PolicyFactory = Callable[[Toolbox], Policy]


class Workers:
    """One toolbox per thread: the in-process simulator is not thread-safe."""

    def __init__(self, refs: list[str], first: Toolbox | None = None) -> None:
        self.refs = refs
        self.local = threading.local()
        self.local.toolbox = first  # the creating thread's (the driver's, when it runs seeds itself)

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
        self.cause = cause
        self.exit_code = 2 if isinstance(cause, CacheMiss) else 1

    def __reduce__(self) -> tuple[Any, ...]:  # sent back from a worker process as itself
        return (SeedStopped, (self.seed, self.cause))


@dataclass(frozen=True, slots=True)
class SeedLines:
    """One seed's outcome as the writer takes it: its (trace line, dataset line), or None and
    why the seed is not written, and what it cost."""

    seed: int
    lines: tuple[bytes, bytes] | None
    error: str
    calls: int
    cost: Cost
    model_requests: int
    cache_hits: int


def seed_lines(outcome: SampleOutcome, provenance: Provenance) -> SeedLines:
    """The outcome's lines (:func:`~toolgrad.dataset.lines.record_lines`) and its costs."""
    lines: tuple[bytes, bytes] | None = None
    if not outcome.ok:
        errors = [it.error for it in outcome.trace.iterations if it.error]
        error = errors[-1] if errors else "no successful update"
    else:
        try:
            lines, error = record_lines(outcome, provenance), ""
        except TypeError as exc:  # e.g. an integer wider than 64 bits: orjson refuses it
            error = f"the record cannot be written as canonical JSON: {exc}"
    return SeedLines(outcome.seed, lines, error, outcome.calls(), outcome.cost, outcome.model_requests,
                     outcome.cache_hits)


class SeedJob:
    """``job(seed)``: one sample's :class:`SeedLines`. Pickled, it carries only its settings; a
    worker process builds its toolboxes once (one per thread) and reuses them for every seed it
    runs (a toolbox's answers do not depend on the seeds it ran before)."""

    def __init__(self, refs: list[str], factory: PolicyFactory, config: GeneratorConfig, provenance: Provenance,
                 workers: Workers | None = None) -> None:
        self.refs, self.factory, self.config, self.provenance = list(refs), factory, config, provenance
        self.workers = workers  # this process's toolboxes; a worker process makes its own

    def __reduce__(self) -> tuple[Any, ...]:
        return (SeedJob, (self.refs, self.factory, self.config, self.provenance))

    def __call__(self, seed: int) -> SeedLines:
        workers = self.workers or process_local(("seed-toolboxes", tuple(self.refs)), lambda: Workers(self.refs))
        box = workers.toolbox()
        try:
            outcome = run_sample(box, self.factory(box), seed, self.config, session=f"seed-{seed}")
            return seed_lines(outcome, self.provenance)
        except (CacheMiss, EndpointError) as exc:
            raise SeedStopped(seed, exc) from exc
        except ToolgradError:
            raise
        except Exception as exc:
            raise RuntimeError(f"seed {seed}: {type(exc).__name__}: {exc}") from exc
        finally:
            box.forget_snapshots()

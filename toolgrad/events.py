"""Every event the kit's long runs emit, in one place (schemathesis's habit): the runs emit plain
dataclasses to an ``EventSink``; the CLI's renderers (:mod:`toolgrad.cli.render`) turn them into
progress bars and summaries, and a program can consume them the same way.

* generation (``toolgrad generate``, :func:`toolgrad.dataset.runner.generate_dataset`):
  :class:`RunStarted`, then :class:`SampleDone` per seed in seed order, :class:`Notice` for
  anything a user should hear, :class:`RunFinished` with the run summary;
* phases of a benchmark (``toolgrad bench compare``): :class:`PhaseStarted` and
  :class:`PhaseAdvanced`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .records import RunSummary


@dataclass(frozen=True, slots=True)
class RunStarted:
    output: str
    seed: int
    requested: int
    pending: int
    already: int
    environments: list[str]


@dataclass(frozen=True, slots=True)
class SampleDone:
    seed: int
    ok: bool
    calls: int
    model_calls: int
    prompt_tokens: int
    completion_tokens: int
    error: str = ""  # why a failed seed failed (the last stage error)


@dataclass(frozen=True, slots=True)
class Notice:
    message: str


@dataclass(frozen=True, slots=True)
class RunFinished:
    summary: RunSummary


Event = RunStarted | SampleDone | Notice | RunFinished
EventSink = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class PhaseStarted:
    label: str  # e.g. "petstore: dfs generate"
    total: int


@dataclass(frozen=True, slots=True)
class PhaseAdvanced:
    label: str


PhaseEvent = PhaseStarted | PhaseAdvanced

"""The CLI's renderers: each turns one kind of event (:mod:`toolgrad.events`) into what a user
sees. Progress goes to stderr (silenced by ``--quiet``), results to stdout."""

from __future__ import annotations

import sys
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from toolgrad.events import (
    Event,
    Notice,
    PhaseAdvanced,
    PhaseEvent,
    PhaseStarted,
    RunFinished,
    RunStarted,
    SampleDone,
)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} samples/s" if speed else "- samples/s", style="cyan")


class GenerationView:
    """Generation's events (``toolgrad generate``) as a progress bar on stderr and a closing summary on
    stdout (a table, or with ``json_out`` one JSON object)."""

    def __init__(self, console: Console, out: Console, json_out: bool = False) -> None:
        self.console = console  # stderr: the bar, notices (silenced by --quiet)
        self.out = out  # stdout: the closing summary, a table or (--json) one JSON object
        self.json_out = json_out
        self.progress = Progress(
            TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
            TextColumn("{task.fields[calls]} model calls, {task.fields[tokens]} tokens, {task.fields[failed]} failed"),
            TimeRemainingColumn(), console=console, transient=False,
        )
        self.task: Any = None
        self.calls = self.tokens = self.failed = self.written = 0
        self.reasons: dict[int, str] = {}  # a few failed seeds and why

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.console.print(
                f"seed {event.seed}: {event.requested} sample(s) requested, {event.already} already in "
                f"{escape(event.output)}, {event.pending} to generate over {escape(', '.join(event.environments))}",
                highlight=False)
            self.progress.start()
            self.task = self.progress.add_task("generate", total=event.pending, calls=0, tokens=0, failed=0)
        elif isinstance(event, SampleDone):
            self.calls += event.model_calls
            self.tokens += event.prompt_tokens + event.completion_tokens
            self.failed += 0 if event.ok else 1
            self.written += 1 if event.ok else 0
            if not event.ok and len(self.reasons) < 5:
                self.reasons[event.seed] = event.error
            self.progress.update(self.task, advance=1, calls=self.calls, tokens=self.tokens, failed=self.failed)
        elif isinstance(event, Notice):
            self.console.print(f"[yellow]warning:[/yellow] {escape(event.message)}", highlight=False)
        elif isinstance(event, RunFinished):
            self.progress.stop()
            self._summary(event)

    def stop(self) -> None:
        if self.task is not None:
            self.progress.stop()

    def _summary(self, event: RunFinished) -> None:
        s = event.summary
        if self.json_out:
            sys.stdout.write(orjson.dumps(s.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS).decode() + "\n")
        else:
            self.out.print(self._table(event), highlight=False)
        for seed, reason in self.reasons.items():
            self.console.print(f"seed {seed} failed: {escape(reason)}", highlight=False)

    def _table(self, event: RunFinished) -> Table:
        s = event.summary
        table = Table(title="toolgrad generate", show_header=False)
        rows = [
            ("seed", str(s.config.get("seed"))),
            ("dataset", escape(s.dataset)),
            ("samples in file", str(s.samples)),
            ("new samples", str(s.new_samples)),
            ("failed seeds", (", ".join(map(str, s.failed_seeds[:20])) + (" ..." if len(s.failed_seeds) > 20 else ""))
             or "none"),
            ("tool calls", str(s.tool_calls)),
            ("model calls / tokens", f"{s.model_calls} / {s.prompt_tokens + s.completion_tokens}"),
            ("model requests / cache hits", f"{s.model_requests} / {s.cache_hits}"),
            ("wall time", f"{s.wall_seconds:.2f} s ({s.samples_per_second:.1f} samples/s)"),
            ("schema", str(s.config.get("schema"))),
        ]
        for key, value in rows:
            table.add_row(key, value)
        return table


class PhaseView:
    """A benchmark's phases (``toolgrad bench compare``) as one progress bar each, on stderr."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, event: PhaseEvent) -> None:
        if isinstance(event, PhaseStarted):
            self.tasks[event.label] = self.progress.add_task(event.label, total=event.total)
        elif isinstance(event, PhaseAdvanced) and event.label in self.tasks:
            self.progress.advance(self.tasks[event.label])

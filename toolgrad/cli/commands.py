"""``toolgrad generate`` and ``toolgrad export``: the shell around :mod:`toolgrad.dataset.runner` and
:mod:`toolgrad.exports.openai`. Only this module prints.

Each flag maps to one field of :class:`~toolgrad.settings.GenerateSettings` /
:class:`~toolgrad.settings.ExportSettings` and one ``TOOLGRAD_*`` variable (a flag wins over its
variable). Errors a user can act on print one line and exit 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from simulator.errors import EXIT_CODES, SimulatorError
from toolgrad.dataset.runner import Event, Notice, RunFinished, RunStarted, SampleDone, generate_dataset
from toolgrad.exports.openai import export_dataset
from toolgrad.settings import (
    EXPORT_ENV,
    GENERATE_ENV,
    ExportSettings,
    GenerateSettings,
    RunIncomplete,
    ToolgradError,
    from_environment,
)

_err = Console(stderr=True)


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except (ToolgradError, SimulatorError) as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(getattr(exc, "exit_code", 2)) from None


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} samples/s" if speed else "- samples/s", style="cyan")


class _ProgressView:
    """Turns run events into a progress bar and a closing summary."""

    def __init__(self, console: Console) -> None:
        self.console = console
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
                f"{event.output}, {event.pending} to generate over {', '.join(event.environments)}")
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
        table = Table(title="toolgrad generate", show_header=False)
        rows = [
            ("seed", str(s.config.get("seed"))),
            ("dataset", s.dataset),
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
        self.console.print(table)
        for seed, reason in self.reasons.items():
            self.console.print(f"seed {seed} failed: {escape(reason)}", highlight=False)


def generate(
    env: list[str] = typer.Option(None, "--env", "-e", help=f"environment name, directory or spec file; repeat "
                                  f"for multi-env chains (default: all shipped) [{GENERATE_ENV['envs']}]"),
    n: int = typer.Option(None, "--n", "-n", help=f"samples to generate (default 10) [{GENERATE_ENV['n']}]"),
    seed: int = typer.Option(None, "--seed", help=f"sample i uses seed S+i (default 0) [{GENERATE_ENV['seed']}]"),
    llm: str = typer.Option(None, "--llm", help=f"offline | openai (default offline) [{GENERATE_ENV['llm']}]"),
    model: str = typer.Option(None, "--model", help=f"model name for --llm openai [{GENERATE_ENV['model']}]"),
    base_url: str = typer.Option(None, "--base-url", help=f"OpenAI-compatible endpoint [{GENERATE_ENV['base_url']}]"),
    cache: str = typer.Option(None, "--cache", help=f"record/replay cache directory [{GENERATE_ENV['cache']}]"),
    replay_only: bool = typer.Option(None, "--replay-only/--no-replay-only",
                                     help=f"never call the model: cache hits only [{GENERATE_ENV['replay_only']}]"),
    temperature: float = typer.Option(None, "--temperature",
                                      help=f"the model's sampling temperature, recorded in each sample's provenance "
                                      f"(default 0; the paper samples at 1.0) [{GENERATE_ENV['temperature']}]"),
    concurrency: int = typer.Option(None, "--concurrency", "-c",
                                    help=f"samples in flight (default 1) [{GENERATE_ENV['concurrency']}]"),
    iterations: int = typer.Option(None, "--iterations", help=f"T (default 10) [{GENERATE_ENV['iterations']}]"),
    batch_size: int = typer.Option(None, "--batch-size", help=f"B (default 50) [{GENERATE_ENV['batch_size']}]"),
    proposals: int = typer.Option(None, "--proposals", help=f"k (default 3) [{GENERATE_ENV['proposals']}]"),
    output: str = typer.Option(None, "--output", "-o",
                               help=f"dataset file (JSONL; resumed if it exists) [{GENERATE_ENV['output']}]"),
) -> None:
    """Generate answer-first tool-use samples (resumable; same seed, same bytes). One writer per
    output: a second run on the same file exits 2 naming the pid of the one writing it."""
    console = Console()
    with _user_errors():
        settings: GenerateSettings = from_environment(
            GenerateSettings, GENERATE_ENV, envs=env or None, n=n, seed=seed, llm=llm, model=model,
            base_url=base_url, cache=cache, replay_only=replay_only, temperature=temperature, concurrency=concurrency,
            iterations=iterations, batch_size=batch_size, proposals=proposals, output=output)
        view = _ProgressView(console)
        try:
            generate_dataset(settings, events=view)
        finally:
            view.stop()
        if view.failed and not view.written:
            first = next(iter(view.reasons.items()), None)
            cause = f" (first: seed {first[0]}: {first[1]})" if first else ""
            raise RunIncomplete(f"none of the {view.failed} seed(s) run gave a sample{cause}; "
                                f"nothing was added to {settings.output}")


def export(
    dataset: str = typer.Argument(..., help="a dataset written by toolgrad generate (for hf, also a "
                                  "`toolgrad split` directory: its train and test splits)"),
    format: str = typer.Option(None, "--format", "-f", help=f"openai | calls | bfcl | hf [{EXPORT_ENV['format']}]"),
    output: str = typer.Option(None, "--output", "-o",
                               help=f"output file (a directory for bfcl and hf) [{EXPORT_ENV['output']}]"),
    negatives: float = typer.Option(None, "--negatives",
                                    help=f"share of irrelevance negatives in calls and bfcl (default 0.2) [{EXPORT_ENV['negatives']}]"),
    distractors: int = typer.Option(None, "--distractors",
                                    help=f"extra tools offered per sample (default 4) [{EXPORT_ENV['distractors']}]"),
    seed: int = typer.Option(None, "--seed", help=f"seed of the export's choices (default 0) [{EXPORT_ENV['seed']}]"),
) -> None:
    """Export a dataset: OpenAI fine-tuning JSONL, single-turn call lists, BFCL's layout, or a Hugging
    Face dataset repository."""
    with _user_errors():
        settings: ExportSettings = from_environment(
            ExportSettings, EXPORT_ENV, input=dataset, format=format, output=output, negatives=negatives,
            distractors=distractors, seed=seed)
        count = export_dataset(settings)
    Console().print(f"wrote {count} record(s) to {settings.output} ({settings.format}, seed {settings.seed})")


def split(
    dataset: str = typer.Argument(..., help="a dataset written by toolgrad generate"),
    test: float = typer.Option(0.2, "--test", min=0.0, max=1.0, help="share of samples to hold out for test"),
    by: str = typer.Option("sequence", "--by", help="sequence: no test sample shares its tool-call sequence "
                           "with a training sample; env: nor any environment"),
    seed: int = typer.Option(0, "--seed", help="seed of the group ranking"),
    output: str = typer.Option(..., "--output", "-o", help="directory for train.jsonl, test.jsonl and split.json"),
) -> None:
    """Split a dataset into train and test sets that hold out (deterministic; see docs/training.md)."""
    from toolgrad.exports.split import split_file

    with _user_errors():
        manifest = split_file(dataset, output, test, by=by, seed=seed)  # type: ignore[arg-type]
    n = manifest["samples"]
    Console().print(f"{n['train']} train / {n['test']} test samples (target {manifest['target_test_samples']}), "
                    f"{manifest['groups']['test']} of {manifest['groups']['total']} {by} groups held out, in {output}")


COMMANDS: dict[str, Callable[..., None]] = {"generate": generate, "export": export, "split": split}


def register(app: typer.Typer) -> None:
    """Add ``generate``, ``export`` and ``split`` to the root ``toolgrad`` app."""
    for name, command in COMMANDS.items():
        app.command(name, epilog=EXIT_CODES)(command)
    from toolgrad.train.cli import register as register_train  # torch loads only when `train` runs

    register_train(app)

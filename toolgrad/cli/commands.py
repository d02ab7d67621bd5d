"""``toolgrad generate`` and ``toolgrad export``: the shell around :mod:`toolgrad.dataset.runner` and
:mod:`toolgrad.exports.openai`. Only this module prints.

Each flag maps to one field of :class:`~toolgrad.settings.GenerateSettings` /
:class:`~toolgrad.settings.ExportSettings` and one ``TOOLGRAD_*`` variable (a flag wins over its
variable). Errors a user can act on print one line, naming the flag, and exit 2 (see
:mod:`simulator.cli.shell`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import typer

from simulator.cli.shell import console, escape, help_text, stdout_console, user_errors
from simulator.errors import EXIT_CODES, SimulatorError
from toolgrad.settings import (
    EXPORT_ENV,
    GENERATE_ENV,
    ExportSettings,
    GenerateSettings,
    RunIncomplete,
    ToolgradError,
    from_environment,
)

_USER_ERRORS = (ToolgradError, SimulatorError)


def _opt(settings: type[Any], names: dict[str, str], field: str, text: str, shown: Any = None) -> str:
    """Help for the flag of ``field``: its text, its ``TOOLGRAD_*`` variable and its default
    (taken from the settings model, so the help cannot drift from it)."""
    info = settings.model_fields[field]
    default = shown if shown is not None else (None if info.is_required() else info.get_default(call_default_factory=True))
    return help_text(text, env=names[field], default=None if default in ("", []) else default)


def default_workers_unless_set(given: int | None, variable: str) -> int | None:
    """``--workers``: the flag, else its variable (None here), else the core count: the CLI runs on
    every core by default, the library in process."""
    if given is not None or variable in os.environ:
        return given
    from toolgrad.executors import workers_or_all_cores  # multiprocessing et al.: only when a command runs

    return workers_or_all_cores(given)


def _gen(field: str, text: str, shown: Any = None) -> str:
    return _opt(GenerateSettings, GENERATE_ENV, field, text, shown)


def _exp(field: str, text: str, shown: Any = None) -> str:
    return _opt(ExportSettings, EXPORT_ENV, field, text, shown)


def generate(
    env: list[str] = typer.Option(None, "--env", "-e", help=_gen("envs", "environment name, directory or spec "
                                  "file; repeat for multi-env chains", shown="all shipped")),
    n: int = typer.Option(None, "--n", "-n", help=_gen("n", "samples to generate")),
    seed: int = typer.Option(None, "--seed", help=_gen("seed", "sample i uses seed S+i")),
    llm: str = typer.Option(None, "--llm", help=_gen("llm", "offline | openai")),
    model: str = typer.Option(None, "--model", help=_gen("model", "model name for --llm openai")),
    base_url: str = typer.Option(None, "--base-url", help=_gen("base_url", "OpenAI-compatible endpoint")),
    cache: str = typer.Option(None, "--cache", help=_gen("cache", "record/replay cache directory")),
    replay_only: bool = typer.Option(None, "--replay-only/--no-replay-only",
                                     help=_gen("replay_only", "never call the model: cache hits only")),
    temperature: float = typer.Option(None, "--temperature",
                                      help=_gen("temperature", "the model's sampling temperature, recorded in "
                                                "each sample's provenance (the paper samples at 1.0)")),
    concurrency: int = typer.Option(None, "--concurrency", "-c", help=_gen("concurrency", "samples in flight "
                                    "per worker, as threads: for a model endpoint that serves requests in parallel")),
    workers: int = typer.Option(None, "--workers", "-w", help=_gen("workers", "processes running samples (1: in "
                                "this process); same bytes for any number", shown="the core count")),
    executor: str = typer.Option(None, "--executor", help=_gen("executor", "where the workers run: local "
                                 "(this machine) or ray (a Ray cluster; needs the ray extra)")),
    ray_address: str = typer.Option(None, "--ray-address", help=_gen("ray_address", "a running Ray cluster's "
                                    "address (`ray start --head` prints it)", shown="a local Ray")),
    iterations: int = typer.Option(None, "--iterations", help=_gen("iterations", "T")),
    batch_size: int = typer.Option(None, "--batch-size", help=_gen("batch_size", "B")),
    proposals: int = typer.Option(None, "--proposals", help=_gen("proposals", "k")),
    output: str = typer.Option(None, "--output", "-o",
                               help=_gen("output", "dataset file (JSONL; resumed if it exists)")),
    json_out: bool = typer.Option(False, "--json", help="print the run summary as JSON on stdout instead of a table"),
) -> None:
    """Generate answer-first tool-use samples (resumable; same seed, same bytes). One writer per
    output: a second run on the same file exits 2 naming the pid of the one writing it."""
    with user_errors(*_USER_ERRORS):
        settings: GenerateSettings = from_environment(
            GenerateSettings, GENERATE_ENV, flags={"envs": "--env"}, envs=env or None, n=n, seed=seed, llm=llm,
            model=model, base_url=base_url, cache=cache, replay_only=replay_only, temperature=temperature,
            concurrency=concurrency, workers=default_workers_unless_set(workers, GENERATE_ENV["workers"]),
            executor=executor, ray_address=ray_address, iterations=iterations, batch_size=batch_size,
            proposals=proposals, output=output)
        _start_workers_early(settings)
        # the loop and its renderers load when a command runs, not with every `toolgrad` command
        # (and once the fork server is starting: its imports and these run side by side)
        from toolgrad.dataset.runner import generate_dataset

        from .render import GenerationView

        view = GenerationView(console, stdout_console(), json_out)
        try:
            generate_dataset(settings, events=view)
        finally:
            view.stop()
        if view.failed and not view.written:
            first = next(iter(view.reasons.items()), None)
            cause = f" (first: seed {first[0]}: {first[1]})" if first else ""
            raise RunIncomplete(f"none of the {view.failed} seed(s) run gave a sample{cause}; "
                                f"nothing was added to {settings.output}")


GENERATE_WORKER_MODULES = ("toolgrad.dataset.seed_order",)  # what a generate worker imports: its job's module


def _start_workers_early(settings: GenerateSettings) -> None:
    """With local worker processes, start their fork server now: it imports what they need
    while this process loads the environments and reads the output it resumes."""
    from toolgrad.executors import in_process, start_fork_server

    if settings.executor == "local" and not in_process(settings.workers, settings.executor):
        start_fork_server(GENERATE_WORKER_MODULES)


def export(
    dataset: str = typer.Argument(..., help="a dataset written by toolgrad generate (for hf, also a "
                                  "`toolgrad split` directory: its train and test splits)"),
    format: str = typer.Option(None, "--format", "-f", help=_exp("format", "openai | calls | bfcl | hf")),
    output: str = typer.Option(None, "--output", "-o",
                               help=_exp("output", "output file (a directory for bfcl and hf)")),
    negatives: float = typer.Option(None, "--negatives",
                                    help=_exp("negatives", "share of irrelevance negatives in calls and bfcl")),
    distractors: int = typer.Option(None, "--distractors", help=_exp("distractors", "extra tools offered per sample")),
    seed: int = typer.Option(None, "--seed", help=_exp("seed", "seed of the export's choices")),
) -> None:
    """Export a dataset: OpenAI fine-tuning JSONL, single-turn call lists, BFCL's layout, or a Hugging
    Face dataset repository."""
    from toolgrad.exports.openai import export_dataset

    with user_errors(*_USER_ERRORS):
        settings: ExportSettings = from_environment(
            ExportSettings, EXPORT_ENV, flags={"input": "DATASET"}, input=dataset, format=format, output=output,
            negatives=negatives, distractors=distractors, seed=seed)
        count = export_dataset(settings)
    console.print(f"wrote {count} record(s) to {escape(settings.output)} ({settings.format}, seed {settings.seed})",
                  highlight=False)


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

    with user_errors(*_USER_ERRORS):
        manifest = split_file(dataset, output, test, by=by, seed=seed)  # type: ignore[arg-type]
    n = manifest["samples"]
    console.print(f"{n['train']} train / {n['test']} test samples (target {manifest['target_test_samples']}), "
                  f"{manifest['groups']['test']} of {manifest['groups']['total']} {by} groups held out, "
                  f"in {escape(output)}", highlight=False)


COMMANDS: dict[str, Callable[..., None]] = {"generate": generate, "export": export, "split": split}


def register(app: typer.Typer) -> None:
    """Add ``generate``, ``export`` and ``split`` to the root ``toolgrad`` app."""
    for name, command in COMMANDS.items():
        app.command(name, epilog=EXIT_CODES)(command)
    from toolgrad.train.cli import register as register_train  # torch loads only when `train` runs

    register_train(app)

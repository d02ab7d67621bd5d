"""``toolgrad bench compare``: the shell around :mod:`benchmarks.baseline.compare`. Only this module prints.

Each flag maps to one field of :class:`~benchmarks.baseline.compare.CompareSettings` and one environment
variable (``TOOLGRAD_*`` shared with ``toolgrad generate`` for the model, ``TOOLGRAD_COMPARE_*``
for the rest). Errors a user can act on print one line and exit 2.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from simulator.cli.shell import console, escape, fail, help_text, stdout_console, user_errors
from simulator.errors import SimulatorError
from toolgrad.backends.base import ModelError
from toolgrad.settings import ToolgradError

if TYPE_CHECKING:
    from benchmarks.baseline.compare import Comparison

bench_app = typer.Typer(help="Benchmarks of the generator itself: answer-first against query-first.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` group (``toolgrad bench compare``) to the root app."""
    app.add_typer(bench_app, name="bench")


@bench_app.command("compare")
# Over 60 lines for its signature: one typer option per flag, each with its help; the body is short.
def compare_command(
    output: Annotated[Path, typer.Option("-o", "--output", envvar="TOOLGRAD_COMPARE_OUTPUT",
                                         help="Directory for both datasets, their certificates, compare.json "
                                              "and compare.md.")],
    env: Annotated[list[str] | None, typer.Option(
        "--env", "-e", help=help_text("Environment name, directory or spec file; repeat for several",
                                env="TOOLGRAD_ENV", default="all shipped"))] = None,
    n: Annotated[int, typer.Option("--n", "-n", envvar="TOOLGRAD_COMPARE_N", min=1,
                                   help="Attempted samples per generator (per environment with --per-env).")] = 50,
    seed: Annotated[int, typer.Option("--seed", envvar="TOOLGRAD_SEED", help="Sample i uses seed S+i.")] = 0,
    llm: Annotated[str, typer.Option("--llm", envvar="TOOLGRAD_LLM", help="offline | openai")] = "offline",
    model: Annotated[str, typer.Option("--model", envvar="TOOLGRAD_MODEL", help="Model name (--llm openai).")] = "",
    base_url: Annotated[str, typer.Option("--base-url", envvar="TOOLGRAD_BASE_URL",
                                          help="OpenAI-compatible endpoint (--llm openai).")] = "",
    cache: Annotated[str | None, typer.Option("--cache", envvar="TOOLGRAD_CACHE",
                                              help="Record/replay cache directory of the model backend.")] = None,
    replay_only: Annotated[bool, typer.Option("--replay-only", envvar="TOOLGRAD_REPLAY_ONLY",
                                              help="Answer only from the cache; a miss is an error.")] = False,
    per_env: Annotated[bool, typer.Option("--per-env", envvar="TOOLGRAD_COMPARE_PER_ENV",
                                          help="Compare on each environment alone (else on all together).")] = False,
    temperature: Annotated[float, typer.Option("--temperature", envvar="TOOLGRAD_TEMPERATURE", min=0.0, max=2.0,
                                               help="Both generators' sampling temperature (--llm openai).")] = 0.0,
    iterations: Annotated[int, typer.Option("--iterations", envvar="TOOLGRAD_ITERATIONS", min=1,
                                            help="ToolGrad iterations T per sample.")] = 10,
    proposals: Annotated[int, typer.Option("--proposals", envvar="TOOLGRAD_PROPOSALS", min=1,
                                           help="ToolGrad proposals k per iteration.")] = 3,
    batch_size: Annotated[int, typer.Option("--batch-size", envvar="TOOLGRAD_BATCH_SIZE", min=2,
                                            help="Tools per seed: ToolGrad's mini-batch B, DFSDT's sampled set.")] = 50,
    max_model_calls: Annotated[int, typer.Option(
        "--max-model-calls", envvar="TOOLGRAD_COMPARE_MAX_MODEL_CALLS", min=2,
        help="Model calls per seed, both generators (offline: DFSDT decisions); ToolBench's 200.")] = 200,
    dfs_width: Annotated[int, typer.Option("--dfs-width", envvar="TOOLGRAD_COMPARE_DFS_WIDTH", min=1,
                                           help="DFSDT children per node (ToolBench's w2).")] = 2,
    dfs_max_depth: Annotated[int, typer.Option("--dfs-max-depth", envvar="TOOLGRAD_COMPARE_DFS_MAX_DEPTH", min=1,
                                               help="DFSDT tree nodes per path, counted as ToolBench does.")] = 12,
    json_out: Annotated[bool, typer.Option("--json", help="Print compare.json on stdout.")] = False,
) -> None:
    """Run ToolGrad (answer-first) and ToolBench's DFSDT (query-first) on the same environments,
    model, tool set size and budget, certify both datasets and report them side by side, per
    environment with 95% intervals (--per-env) and pooled."""
    # imported here, not at the top: the baseline and its statistics (scipy) take a second to
    # import, and every other command would pay it at start-up
    from pydantic import ValidationError

    from benchmarks.baseline.compare import CompareSettings, run_comparison
    from benchmarks.baseline.report import write_comparison
    from benchmarks.certify.replay import BenchmarkError
    from toolgrad.cli.render import PhaseView

    values: dict[str, Any] = {
        "envs": env or [], "n": n, "seed": seed, "llm": llm, "model": model, "base_url": base_url, "cache": cache,
        "replay_only": replay_only, "temperature": temperature, "per_env": per_env, "iterations": iterations,
        "proposals": proposals, "batch_size": batch_size, "max_model_calls": max_model_calls,
        "dfs_width": dfs_width, "dfs_max_depth": dfs_max_depth, "output": str(output),
    }
    try:
        settings = CompareSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        fail(f"invalid settings: {problems}")
    if settings.llm == "openai" and not settings.model:
        fail("--llm openai needs --model (or TOOLGRAD_MODEL)")
    command = shlex.join(["toolgrad", *sys.argv[1:]]) if sys.argv[1:2] == ["bench"] else ""
    view = PhaseView(console)
    with user_errors(ToolgradError, BenchmarkError, SimulatorError, ModelError), view.progress:
        comparison = run_comparison(settings, events=view, command=command)
    json_path, md_path = write_comparison(comparison, output)
    if json_out:
        sys.stdout.write(json_path.read_text(encoding="utf-8"))
        return
    _print(comparison)
    console.print(escape(f"wrote {json_path} and {md_path}"), highlight=False)


def _print(comparison: Comparison) -> None:
    from rich.table import Table

    from benchmarks.baseline.report import SUMMARY_HEADER, group_header, group_rows, summary_rows

    out = stdout_console()
    table = Table(*SUMMARY_HEADER, title=f"toolgrad bench compare, seed {comparison.seed}, "
                                         f"{', '.join(comparison.total.environments)}")
    for row in summary_rows(comparison):
        table.add_row(*row)
    out.print(table)
    if len(comparison.groups) > 1:
        per_env = Table(*group_header(comparison), title="per environment (95% intervals)")
        for group_row in group_rows(comparison):
            per_env.add_row(*group_row)
        out.print(per_env)

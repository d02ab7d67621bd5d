"""``toolgrad bench simulator|generate|certify|lines|mutations|soak|finetune``: the speed and quality scripts of
:mod:`benchmarks.perf` as subcommands.

Each subcommand hands its arguments, unparsed, to the script's ``main`` (its own argparse, so
``toolgrad bench simulator --help`` is the script's help and ``python -m benchmarks.perf.simulator``
takes the same flags). A script module is imported only when its subcommand runs.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

# subcommand -> (module under benchmarks.perf, one line of help)
PERF_SCRIPTS: dict[str, tuple[str, str]] = {
    "simulator": ("simulator", "Simulator requests/s and latency against Prism (wrk; --help for its flags)."),
    "generate": ("generate", "Offline generation throughput, samples/s (--help for its flags)."),
    "certify": ("certify", "Certification throughput, replayed steps/s (--help for its flags)."),
    "lines": ("lines", "Bytes per dataset line (schema 2, 3, 4; per field) and certify's peak RSS at two sizes (--help)."),
    "mutations": ("mutations", "What certify catches: samples broken on purpose, caught per kind of break (--help)."),
    "soak": ("soak", "Hours of load on one sandbox: memory, latency, errors (--help for its flags)."),
    "finetune": ("finetune", "Fine-tune on generated data and compare base vs tuned (--help for its flags)."),
}
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def run_script(name: str, args: list[str]) -> int:
    """Run ``benchmarks.perf.<name>``'s ``main`` on ``args``; its exit status (0 when it returns
    None)."""
    module = importlib.import_module(f"benchmarks.perf.{PERF_SCRIPTS[name][0]}")
    try:
        status: Any = module.main(args, prog=f"toolgrad bench {name}")
    except SystemExit as exc:  # argparse --help / usage errors, and the scripts' own exits
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0


def _command(name: str) -> Any:
    def command(ctx: typer.Context) -> None:
        raise typer.Exit(run_script(name, list(ctx.args)))

    command.__doc__ = PERF_SCRIPTS[name][1]
    return command


def register(bench_app: typer.Typer) -> None:
    """Add one pass-through subcommand per perf script to the ``bench`` group."""
    for name, (_, text) in PERF_SCRIPTS.items():
        bench_app.command(name, help=text, context_settings=_PASS_THROUGH, add_help_option=False)(_command(name))

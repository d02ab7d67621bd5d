"""The ``toolgrad`` command tree: every package's commands under one root (built when
:mod:`benchmarks.cli.app` runs the console script, not when it is imported).

It lives in the top layer because it composes all three packages (see ARCHITECTURE.md).
Start-up is part of every command's time, so this module and the command modules it registers
import only what building the command tree needs; each command imports its machinery (the
simulator, the DFS baseline, scipy, the model backend) when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from simulator.cli.app import sim_app
from simulator.cli.shell import console, escape, set_quiet, set_verbose
from simulator.errors import EXIT_CODES
from toolgrad.cli.commands import register as register_toolgrad
from toolgrad.dataset.files import write_bytes_atomic

from .app import kit_version
from .commands import register
from .compare import bench_app
from .compare import register as register_compare
from .perf import register as register_perf

app = typer.Typer(
    help="Answer-first tool-use data (ToolGrad) on deterministic OpenAPI sandboxes.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sim_app, name="sim")
register(app)
register_toolgrad(app)
register_compare(app)
register_perf(bench_app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"toolgrad-kit {kit_version()}")
        raise typer.Exit(0)


@app.callback()
def root(
    _version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                           help="Print the kit's version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, notices or summaries on "
                                        "stderr (errors still print; results on stdout unchanged).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log at INFO on stderr (what each step is doing).")]
    = False,
) -> None:
    """Answer-first tool-use data (ToolGrad) on deterministic OpenAPI sandboxes."""
    set_quiet(quiet)
    set_verbose(verbose)

@app.command(epilog=EXIT_CODES)
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the dataset and certificate.")] = Path(
        "out/demo"),
    n: Annotated[int, typer.Option(min=1, help="Samples to generate.")] = 24,
    seed: Annotated[int, typer.Option(help="First sample seed.")] = 0,
) -> None:
    """The quick start's job: generate a dataset with the offline policy on every shipped
    environment, certify it (re-execution and the validity checks), and say where both are (no
    key, no network)."""
    from benchmarks.certify.certificate import certificate_bytes, certify_file
    from toolgrad.dataset.runner import generate_dataset
    from toolgrad.settings import GenerateSettings

    out.mkdir(parents=True, exist_ok=True)
    data = out / "data.jsonl"
    console.print(f"generating {n} samples (seed {seed}, offline policy, every shipped environment) ...")
    summary = generate_dataset(GenerateSettings(n=n, seed=seed, output=str(data)))
    console.print(f"  {summary.samples} samples in {escape(str(data))} ({summary.samples_per_second:.1f} samples/s, "
                  f"{summary.tool_calls} tool calls, failed seeds: {summary.failed_seeds or 'none'})")
    console.print("certifying: re-execution on fresh sandboxes and the validity checks ...")
    certificate = certify_file(data)
    cert_path = out / "certificate.json"
    write_bytes_atomic(cert_path, certificate_bytes(certificate))
    console.print(f"  pass rate {certificate.pass_rate:.1%}: {certificate.passed}/{certificate.sample_count} "
                  f"samples, {certificate.step_count} steps replayed; passed per check: "
                  + ", ".join(f"{name} {passed}" for name, passed in certificate.checks.items()))
    typer.echo(f"dataset:     {data}")
    typer.echo(f"certificate: {cert_path}")
    raise typer.Exit(0 if certificate.ok else 1)

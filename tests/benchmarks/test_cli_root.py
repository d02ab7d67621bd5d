"""The root `toolgrad` command: --version, python -m toolgrad, --quiet, errors naming flags, help
showing defaults, and the perf scripts as `toolgrad bench ...` subcommands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from benchmarks.cli.app import app, kit_version
from benchmarks.cli.perf import PERF_SCRIPTS

WIDE = {"COLUMNS": "200"}


def test_version_prints_the_installed_kit_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"toolgrad-kit {kit_version()}"
    assert kit_version()[0].isdigit()


def test_the_console_script_s_module_builds_no_command_tree_when_imported() -> None:
    # a worker process of `certify --workers N` runs the console script's module again (the fork
    # server once for the `toolgrad` script, each worker under `python -m benchmarks.cli.app`):
    # it must not pay for typer, rich or the command tree, which only the driver uses
    code = ("import sys, benchmarks.cli.app; "
            "print(*sorted(m for m in ('typer', 'rich', 'pydantic', 'benchmarks.cli.tree', "
            "'toolgrad.cli.commands') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
    # and the tree is still there for whoever asks for it by its old name
    from benchmarks.cli import app as module
    from benchmarks.cli.tree import app as tree

    assert module.app is tree and app is tree


def test_python_dash_m_toolgrad_runs_the_same_app() -> None:
    done = subprocess.run([sys.executable, "-m", "toolgrad", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"toolgrad-kit {kit_version()}"
    usage = subprocess.run([sys.executable, "-m", "toolgrad", "sim", "--help"], capture_output=True, text=True,
                           timeout=120, env={**os.environ, **WIDE})
    assert usage.returncode == 0 and "Usage: toolgrad sim" in usage.stdout


def test_a_missing_setting_names_the_flag_not_the_variable(tmp_path: Path) -> None:
    # bad input: `toolgrad export` without --format
    result = CliRunner().invoke(app, ["export", str(tmp_path / "data.jsonl"), "-o", str(tmp_path / "out")],
                                env={"TOOLGRAD_EXPORT_FORMAT": None, **WIDE})
    assert result.exit_code == 2
    assert "error: --format is required" in result.output
    assert "TOOLGRAD_EXPORT_FORMAT): Field required" not in result.output


def test_a_bad_value_names_the_flag(tmp_path: Path) -> None:
    # bad input: a negative sample count
    result = CliRunner().invoke(app, ["generate", "-n", "-1", "-o", str(tmp_path / "d.jsonl")])
    assert result.exit_code == 2
    assert "error: --n: Input should be greater than or equal to 0" in result.output


def test_generate_help_shows_defaults_and_variables() -> None:
    text = CliRunner().invoke(app, ["generate", "--help"], env=WIDE).output
    assert "samples to generate [env var: TOOLGRAD_N] [default: 10]" in text
    assert "[env var: TOOLGRAD_ENV] [default: all shipped]" in text
    export_text = CliRunner().invoke(app, ["export", "--help"], env=WIDE).output
    assert "[env var: TOOLGRAD_EXPORT_NEGATIVES] [default: 0.2]" in export_text


def test_every_perf_script_is_a_bench_subcommand_with_its_own_help() -> None:
    listing = CliRunner().invoke(app, ["bench", "--help"], env=WIDE).output
    for name in PERF_SCRIPTS:
        assert name in listing
        result = CliRunner().invoke(app, ["bench", name, "--help"], env=WIDE)
        assert result.exit_code == 0, (name, result.output)
        assert f"usage: toolgrad bench {name}" in result.output


def test_perf_scripts_find_the_environments_they_serve() -> None:
    """The HTTP and soak benchmarks serve envs/petstore from the checkout; a move of their module
    once pointed them at benchmarks/envs, which only failed when a benchmark was run."""
    from benchmarks.perf import simulator, soak

    for module in (simulator, soak):
        assert (module.PETSTORE / "env.yaml").is_file(), module.__name__
    assert simulator.PETSTORE_SPEC.is_file()


def test_bench_passes_bad_flags_to_the_script_which_refuses_them() -> None:
    # bad input: a flag the generate benchmark does not have
    result = CliRunner().invoke(app, ["bench", "generate", "--no-such-flag"])
    assert result.exit_code == 2
    assert "unrecognized arguments: --no-such-flag" in result.output


def test_quiet_silences_progress_and_keeps_results_and_errors(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    loud = subprocess.run([sys.executable, "-m", "toolgrad", "generate", "-n", "1", "-e", "petstore", "-o",
                           str(data), "--json"], capture_output=True, text=True, timeout=300)
    quiet = subprocess.run([sys.executable, "-m", "toolgrad", "--quiet", "generate", "-n", "1", "-e", "petstore",
                            "-o", str(tmp_path / "q.jsonl"), "--json"], capture_output=True, text=True, timeout=300)
    assert loud.returncode == quiet.returncode == 0, quiet.stderr
    assert "sample(s) requested" in loud.stderr and quiet.stderr == ""
    assert '"samples":1' in quiet.stdout
    no_format = {k: v for k, v in os.environ.items() if k != "TOOLGRAD_EXPORT_FORMAT"}
    failed = subprocess.run([sys.executable, "-m", "toolgrad", "--quiet", "export", str(data), "-o",
                             str(tmp_path / "x")], capture_output=True, text=True, timeout=120, env=no_format)
    assert failed.returncode == 2 and "error: --format is required" in failed.stderr


# what only one command needs: the DFS baseline and its statistics (scipy), the model client,
# the HTTP server, the docker SDK
_HEAVY = ("benchmarks.baseline", "benchmarks.evaluate", "scipy", "numpy", "openai", "uvicorn", "docker")
_IMPORTED_AT_EXIT = """
import atexit, sys
atexit.register(lambda: print("imported:", *sorted(m for m in sys.modules if m.startswith({heavy!r}))))
sys.argv = ["toolgrad", *{args!r}]
from benchmarks.cli.app import main
main()
"""


def _heavy_imports(args: list[str], heavy: tuple[str, ...] = _HEAVY) -> tuple[int, list[str]]:
    code = _IMPORTED_AT_EXIT.format(heavy=heavy, args=args)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    marked = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("imported:")]
    assert marked, done.stderr
    return done.returncode, marked[-1]


def test_start_up_and_certify_import_no_other_command_s_machinery(dataset_path: Path, tmp_path: Path) -> None:
    assert _heavy_imports(["--help"]) == (0, [])
    assert _heavy_imports(["--version"]) == (0, [])
    # nor the dataset reader and the record models: only commands that read datasets need them
    assert _heavy_imports(["--version"], ("benchmarks.certify.replay", "toolgrad.records")) == (0, [])
    # nor the loop or the process pools, which only the commands that run need
    at_start = (*_HEAVY, "toolgrad.loop", "multiprocessing", "toolgrad.executors")
    assert _heavy_imports(["--help"], at_start) == (0, [])
    assert _heavy_imports(["certify", str(dataset_path), "-o", str(tmp_path / "cert.json")]) == (0, [])
    assert (tmp_path / "cert.json").is_file()
    # bad input (no such dataset) still ends in one error line and exit 2, not a traceback
    done = subprocess.run([sys.executable, "-m", "benchmarks.cli.app", "certify", str(tmp_path / "missing.jsonl")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "error" in done.stderr.lower()

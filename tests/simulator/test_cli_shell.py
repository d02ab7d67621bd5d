"""The one CLI shell (simulator/cli/shell.py) and the `toolgrad sim` commands printing through it:
user text printed as written, errors as one line with the right exit code, results on stdout at
full width when piped, help that shows defaults, tools named as datasets name them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from simulator.cli.app import sim_app
from simulator.cli.shell import fail, help_text, user_errors
from simulator.errors import SimulatorError

BROKEN_REF_SPEC = """\
openapi: 3.0.3
info: {title: "Broken [/b] refs", version: "1"}
paths:
  /pets/{id}:
    get:
      operationId: getPet
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/[/b]Pet"}
"""


def test_a_ref_holding_rich_markup_is_printed_as_written(tmp_path: Path) -> None:
    # bad input: a $ref that does not resolve and holds `[/b]`, a closing tag Rich would choke on
    spec = tmp_path / "spec.yaml"
    spec.write_text(BROKEN_REF_SPEC, encoding="utf-8")
    result = CliRunner().invoke(sim_app, ["check", str(spec)])
    assert result.exit_code == 2, result.output  # before the shell: a MarkupError, exit 1
    assert "error:" in result.output and "Traceback" not in result.output
    assert "#/components/schemas/[/b]Pet" in result.output  # as written, not eaten as markup


def test_user_errors_honour_the_exceptions_exit_code() -> None:
    class Incomplete(SimulatorError):
        exit_code = 1

    app = typer.Typer()

    @app.command()
    def run(kind: str) -> None:
        with user_errors(SimulatorError):
            raise (Incomplete if kind == "incomplete" else SimulatorError)(f"{kind} [bold]x[/b]")

    incomplete = CliRunner().invoke(app, ["incomplete"])
    plain = CliRunner().invoke(app, ["plain"])
    assert (incomplete.exit_code, plain.exit_code) == (1, 2)
    assert "error: incomplete [bold]x[/b]" in incomplete.output
    assert "Traceback" not in incomplete.output + plain.output


def test_fail_exits_with_the_code_given() -> None:
    with pytest.raises(typer.Exit) as raised:
        fail("a message with [red]markup[/red] in it", code=3)
    assert raised.value.exit_code == 3


def test_help_text_keeps_its_brackets_through_rich_help() -> None:
    app = typer.Typer()

    @app.command()
    def run(limit: int = typer.Option(None, help=help_text("Entries kept", env="TOOLGRAD_X", default=100))) -> None:
        """Run."""

    text = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "Entries kept [env var: TOOLGRAD_X] [default: 100]" in text


def test_sim_serve_help_shows_its_defaults() -> None:
    text = CliRunner().invoke(sim_app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "Sessions kept (LRU beyond) [default: 10000]" in text
    assert "[default: 64 MiB]" in text


def test_sim_check_writes_its_table_to_stdout_at_full_width_when_piped() -> None:
    # a real pipe: stdout is not a terminal, and no COLUMNS tells Rich a width
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run([sys.executable, "-m", "toolgrad", "sim", "check", "petstore"], capture_output=True,
                          text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("pet ")]
    assert rows, done.stdout
    # the pet row lists every operation on one line, far past 80 columns, none cut
    assert len(rows[0].rstrip()) > 120
    assert "update:updatePetWithForm" in rows[0]
    assert done.stderr == ""


def test_sim_tools_names_tools_as_datasets_and_eval_do() -> None:
    import orjson

    from simulator.environments.environment import load_environment
    from simulator.tools import qualified_tools

    result = CliRunner().invoke(sim_app, ["tools", "petstore"])
    assert result.exit_code == 0, result.output
    names = [t["function"]["name"] for t in orjson.loads(result.stdout)]
    expected = list(qualified_tools({"petstore": load_environment("petstore").spec}))
    assert names == expected and "petstore__updatePet" in names
    bare = orjson.loads(CliRunner().invoke(sim_app, ["tools", "petstore", "--no-qualify"]).stdout)
    assert "updatePet" in [t["function"]["name"] for t in bare]


def test_tool_descriptions_say_summary_and_description_once() -> None:
    import orjson

    listing = orjson.loads(CliRunner().invoke(sim_app, ["tools", "petstore"]).stdout)
    described = {t["function"]["name"]: t["function"]["description"] for t in listing}
    assert described["petstore__updatePet"] == "Update an existing pet by Id."
    assert all(".." not in text and text == text.strip() for text in described.values())


def test_the_sandbox_commands_load_when_named_not_with_every_command() -> None:
    # a fresh interpreter: building the whole `toolgrad` command tree leaves simulator.cli.sandbox unimported
    script = ("import sys, typer.main; from benchmarks.cli.app import app; typer.main.get_group(app); "
              "print('simulator.cli.sandbox' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    from simulator.cli.app import SANDBOX_COMMANDS
    from simulator.cli.sandbox import sandbox_app

    assert set(SANDBOX_COMMANDS) == set(typer.main.get_group(sandbox_app).commands)  # the list names them all
    listing = CliRunner().invoke(sim_app, ["--help"], env={"COLUMNS": "200"}).output
    assert all(f" {name} " in listing for name in ("check", "tools", *SANDBOX_COMMANDS)), listing
    usage = CliRunner().invoke(sim_app, ["status", "--help"], env={"COLUMNS": "200"})
    assert usage.exit_code == 0 and "status [OPTIONS]" in usage.output, usage.output

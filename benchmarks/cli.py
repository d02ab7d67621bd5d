"""The ``toolgrad`` console script: every package's commands under one root.

It lives in the top layer because it composes all three packages (see ARCHITECTURE.md).
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from simulator.cli import sim_app
from simulator.errors import SimulatorError

app = typer.Typer(
    help="Answer-first tool-use data (ToolGrad) on deterministic OpenAPI sandboxes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sim_app, name="sim")

_errors: tuple[type[Exception], ...] = (SimulatorError,)


def main() -> None:
    """Run the CLI; errors a user can act on print one message and exit 2, never a traceback."""
    try:
        app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        Console(stderr=True).print("aborted")
        sys.exit(130)
    except _errors as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()

"""The one CLI shell every ``toolgrad`` command prints through: the consoles, the error line and
exit code, and help-text notes.

It sits in the bottom layer (``simulator``) so that ``toolgrad`` and ``benchmarks`` can use it
without the simulator importing anything above it. What a caller may rely on:

- :data:`console` is stderr: progress, notices and summaries. ``--quiet`` silences it
  (:func:`set_quiet`); errors are never silenced.
- :func:`stdout_console` is for results (tables, listings): when stdout is piped, lines are as
  long as their content, never cut or wrapped at 80 columns.
- :func:`fail` and :func:`user_errors` print one ``error:`` line on stderr and exit with the
  exception's ``exit_code`` (2 when it has none), never a traceback.
- Every piece of user text is escaped before Rich renders it: a file name or ``$ref`` holding
  ``[/b]`` prints as written instead of raising ``MarkupError``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

__all__ = [
    "console",
    "escape",
    "fail",
    "help_text",
    "print_error",
    "say",
    "set_quiet",
    "set_verbose",
    "stdout_console",
    "user_errors",
]

PIPED_WIDTH = 100_000  # piped output: as wide as its content (a table never wraps or cuts)

console = Console(stderr=True)
_errors = Console(stderr=True)  # never quiet: an error always reaches the user


def set_quiet(quiet: bool) -> None:
    """``--quiet``: no progress bars, notices or summaries on stderr (errors still print)."""
    console.quiet = quiet


def set_verbose(verbose: bool) -> None:
    """``--verbose``: the kit's ``logging`` at INFO on stderr."""
    if verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def stdout_console() -> Console:
    """A console on stdout for results. On a terminal it wraps to the terminal; piped, it never
    cuts a line (the width is the content's)."""
    piped = not sys.stdout.isatty()
    return Console(width=PIPED_WIDTH if piped else None, soft_wrap=piped)


def say(message: str) -> None:
    """A line on stderr that ``--quiet`` does not silence, for what a user cannot do without (a
    generated admin token); printed as written (no markup)."""
    _errors.print(message, highlight=False, markup=False, soft_wrap=True)


def print_error(message: str) -> None:
    """``error: <message>`` on stderr, the message printed as written (escaped), even under
    ``--quiet``."""
    _errors.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: <message>`` on stderr (see :func:`print_error`) and exit with ``code``."""
    print_error(message)
    raise typer.Exit(code)


@contextmanager
def user_errors(*exception_types: type[BaseException]) -> Iterator[None]:
    """Turn the given exceptions into one error line and an exit code: the exception's
    ``exit_code`` attribute when it has one (``RunIncomplete`` exits 1), else 2."""
    try:
        yield
    except exception_types as exc:
        code = getattr(exc, "exit_code", 2)
        fail(str(exc), code if isinstance(code, int) else 2)


def help_text(text: str, *, env: str | None = None, default: Any = None) -> str:
    """An option's help with its ``[env var: X]`` and ``[default: Y]`` notes, escaped so Rich's
    help rendering shows the brackets instead of reading them as markup."""
    notes = ""
    if env:
        notes += f" [env var: {env}]"
    if default is not None:
        notes += f" [default: {default}]"
    return text + escape(notes)

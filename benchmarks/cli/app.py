"""The ``toolgrad`` console script: :func:`main` builds the command tree
(:mod:`benchmarks.cli.tree`) and runs it.

Importing this module costs next to nothing: a worker process that starts from the console
script (a fork server runs the script's module once, or each worker does under ``python -m``)
imports this module again, and needs none of the command tree. ``app`` is the tree, built on
first use.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

__all__ = ["command_tree", "kit_version", "main", "user_error_types"]  # and `app`, built on first use


def kit_version() -> str:
    """The installed distribution's version (the package's own when run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("toolgrad-kit")
    except PackageNotFoundError:  # pragma: no cover - a checkout on sys.path without an install
        from toolgrad import __version__

        return __version__


def command_tree() -> typer.Typer:
    """The root :class:`typer.Typer` with every package's commands (built once, on first use)."""
    from .tree import app as tree

    return tree


def __getattr__(name: str) -> Any:
    if name == "app":  # ``from benchmarks.cli.app import app``, as before the tree moved
        return command_tree()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def user_error_types() -> tuple[type[Exception], ...]:
    """One root error per package: the errors a user can act on. The benchmarks' root is
    looked up where it lives, not imported: when its module was never imported, no error of
    its kind can have been raised."""
    from simulator.errors import SimulatorError
    from toolgrad.backends.base import ModelError
    from toolgrad.settings import ToolgradError

    types: tuple[type[Exception], ...] = (SimulatorError, ToolgradError, ModelError)
    errors = sys.modules.get("benchmarks.certify.errors")
    return (*types, errors.BenchmarkError) if errors is not None else types


def main() -> None:
    """Run the CLI. Usage errors exit 2 (click's standalone handling); errors a user can act on
    print one message and exit 2, never a traceback."""
    from toolgrad.fork_server import tune_gc

    from .early import start_certify_workers_early

    tune_gc()
    start_certify_workers_early(sys.argv[1:])  # its imports beside the command tree's
    tree = command_tree()
    try:
        tree(prog_name="toolgrad")
    except Exception as exc:
        if not isinstance(exc, user_error_types()):
            raise
        from simulator.cli.shell import print_error

        print_error(str(exc))
        sys.exit(getattr(exc, "exit_code", 2))


if __name__ == "__main__":
    main()

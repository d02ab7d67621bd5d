"""Starting ``toolgrad certify``'s worker fork server before the command tree is built.

Building the tree imports typer, rich, pydantic and every command module (most of the ~0.2 s
``toolgrad --version`` takes). ``certify --workers N`` then starts its workers' fork server,
whose own imports (~0.2 s) its first chunk waits for. Started here instead, from a look at the
command line before click parses it, the server imports beside the tree, on another core.

The look is cautious: it starts the server only for ``certify`` with local workers above 1 and
in-process sandboxes, read from the flags and variables the command reads; anything else leaves
the start to the command (:func:`toolgrad.fork_server.start_fork_server`, which does nothing once
the server runs). A wrong guess costs time, never bytes: the server only imports modules.
This module imports only the standard library and :mod:`toolgrad.fork_server`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from toolgrad.fork_server import default_workers, start_fork_server

ROOT_FLAGS = frozenset({"--quiet", "-q", "--verbose"})  # the root options, none of which takes a value
# what `certify` reads and what its workers import with in-process sandboxes
# (benchmarks.cli.commands; tests/benchmarks/test_cli_early.py keeps the two in step)
WORKERS_FLAGS, EXECUTOR_FLAG, BACKEND_FLAG = ("--workers", "-w"), "--executor", "--backend"
WORKERS_VARIABLE, EXECUTOR_VARIABLE, BACKEND_VARIABLE = (
    "TOOLGRAD_CERTIFY_WORKERS", "TOOLGRAD_EXECUTOR", "TOOLGRAD_CERTIFY_BACKEND")
CERTIFY_WORKER_MODULES = ("benchmarks.certify.certificate", "simulator.environments.environment",
                          "simulator.sandboxes.inprocess", "toolgrad.toolbox")


def start_certify_workers_early(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Start the fork server when ``argv`` (the arguments after the program's name) surely runs
    certify in local worker processes over in-process sandboxes; whether it did."""
    if not runs_certify_workers(argv, environ):
        return False
    start_fork_server(CERTIFY_WORKER_MODULES)
    return True


def runs_certify_workers(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether ``argv`` surely runs ``certify`` with local workers above 1 and in-process sandboxes."""
    command = _command(argv)
    if command is None:
        return False
    given = _values(command, (*WORKERS_FLAGS, EXECUTOR_FLAG, BACKEND_FLAG))
    if given is None:
        return False
    if given.get(EXECUTOR_FLAG, environ.get(EXECUTOR_VARIABLE, "local")) != "local":
        return False
    if given.get(BACKEND_FLAG, environ.get(BACKEND_VARIABLE, "inprocess")) != "inprocess":
        return False
    workers = given.get(WORKERS_FLAGS[0], environ.get(WORKERS_VARIABLE))
    if workers is None:
        return default_workers() > 1
    return workers.isdigit() and int(workers) > 1


def _command(argv: Sequence[str]) -> list[str] | None:
    """The certify command's arguments, after the root options; None for any other command."""
    for i, arg in enumerate(argv):
        if arg not in ROOT_FLAGS:
            return list(argv[i + 1:]) if arg == "certify" else None
    return None


def _values(args: Sequence[str], names: tuple[str, ...]) -> dict[str, str] | None:
    """The last value given to each of ``names`` (``--name V``, ``--name=V``; ``-w V`` and ``-wV``
    as ``--workers``); None when the line asks for help or a flag of ``names`` lacks its value."""
    found: dict[str, str] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        name, equals, value = arg.partition("=")
        if arg in ("--help", "-h", "--"):
            return None
        if arg in names:
            if not rest:
                return None
            found[_long(arg)] = rest.pop(0)
        elif equals and name in names and name.startswith("--"):
            found[name] = value
        elif arg.startswith("-w") and not arg.startswith("--"):  # -w2
            found[WORKERS_FLAGS[0]] = arg[2:]
    return found


def _long(flag: str) -> str:
    return WORKERS_FLAGS[0] if flag == WORKERS_FLAGS[1] else flag

"""benchmarks.cli.early: `toolgrad certify` starts its workers' fork server before the command
tree is built, only when the command line surely asks for local workers over in-process
sandboxes, reading the flags and variables the certify command itself reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from benchmarks.cli.early import (
    BACKEND_FLAG,
    BACKEND_VARIABLE,
    CERTIFY_WORKER_MODULES,
    EXECUTOR_FLAG,
    EXECUTOR_VARIABLE,
    ROOT_FLAGS,
    WORKERS_FLAGS,
    WORKERS_VARIABLE,
    runs_certify_workers,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("argv", "expected"), [
    (["certify", "d.jsonl", "--workers", "2"], True),
    (["-q", "--verbose", "certify", "d.jsonl", "-w2"], True),
    (["certify", "d.jsonl", "--workers=3", "-o", "c.json"], True),
    (["certify", "d.jsonl", "-w", "2", "--workers", "1"], False),  # the last one given wins, as in click
    (["certify", "d.jsonl", "-w", "1"], False),  # in process: no server
    (["certify", "d.jsonl", "-w", "2", "--executor", "ray"], False),  # Ray starts its own workers
    (["certify", "d.jsonl", "--backend=local", "-w", "2"], False),  # HTTP sandboxes: other modules
    (["certify", "d.jsonl", "-w"], False),  # bad input: the flag lacks its value (click says so)
    (["certify", "d.jsonl", "-w", "two"], False),  # bad input: not a number (click says so)
    (["certify", "--help", "-w", "2"], False),
    (["generate", "-w", "2"], False),
    (["--version"], False),
    ([], False),
])
def test_the_command_line_is_read_as_certify_reads_it(argv: list[str], expected: bool) -> None:
    assert runs_certify_workers(argv, {}) is expected


def test_variables_count_where_no_flag_says_otherwise() -> None:
    assert runs_certify_workers(["certify", "d.jsonl"], {WORKERS_VARIABLE: "2"})
    assert not runs_certify_workers(["certify", "d.jsonl"], {WORKERS_VARIABLE: "1"})
    assert runs_certify_workers(["certify", "d.jsonl", "-w", "2"], {WORKERS_VARIABLE: "1"})
    assert not runs_certify_workers(["certify", "d.jsonl", "-w", "2"], {EXECUTOR_VARIABLE: "ray"})
    assert not runs_certify_workers(["certify", "d.jsonl", "-w", "2"], {BACKEND_VARIABLE: "docker"})


def test_the_names_it_reads_are_the_certify_command_s() -> None:
    from benchmarks.cli.app import command_tree
    from benchmarks.cli.commands import certify_worker_modules

    root = typer.main.get_command(command_tree())
    certify = root.commands["certify"]  # type: ignore[attr-defined]
    params = {p.name: p for p in certify.params}
    assert set(params["workers"].opts + params["workers"].secondary_opts) == set(WORKERS_FLAGS)
    assert (params["workers"].envvar, params["executor"].envvar, params["backend"].envvar) == (
        WORKERS_VARIABLE, EXECUTOR_VARIABLE, BACKEND_VARIABLE)
    assert (params["executor"].opts, params["backend"].opts) == ([EXECUTOR_FLAG], [BACKEND_FLAG])
    # the root's options a command may follow: flags (no value to skip); the others
    # (--version, --install-completion, --show-completion) end the line there
    followed = {o for p in root.params if p.name in {"quiet", "verbose"} for o in p.opts}
    assert followed == ROOT_FLAGS
    assert all(p.is_flag for p in root.params if set(p.opts) & ROOT_FLAGS)
    assert certify_worker_modules("inprocess") == CERTIFY_WORKER_MODULES


@pytest.mark.parametrize(("workers", "started"), [("2", True), ("1", False)])
def test_the_fork_server_runs_with_certify_s_modules_only_when_workers_will_use_it(
        workers: str, started: bool) -> None:
    # a fresh interpreter: a process keeps the fork server it started first
    code = ("import sys; from multiprocessing import forkserver; "
            "from benchmarks.cli.early import start_certify_workers_early; "
            f"print(start_certify_workers_early(['certify', 'd.jsonl', '-w', '{workers}'], {{}})); "
            "server = forkserver._forkserver; "
            "print(server._forkserver_pid is not None, ','.join(server._preload_modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    said, running = done.stdout.splitlines()
    assert said == str(started)
    if started:
        assert running == f"True __main__,toolgrad.executors,{','.join(CERTIFY_WORKER_MODULES)}"
    else:
        assert running.split()[0] == "False"

"""toolgrad.executors.ordered_map: input order, bounded reading, errors raised in the driver, a
killed worker process surfacing as WorkerLost (never a hang), on every local placement."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.executor_jobs import (
    FailAt,
    ImportedBefore,
    KillOnce,
    gc_thresholds,
    pid_of,
    raise_unpicklable,
    square,
    thread_name,
)
from toolgrad.executors import (
    WorkerFailed,
    WorkerLost,
    check_placement,
    default_workers,
    in_process,
    ordered_map,
    pickle_problem,
    worker_modules,
    workers_or_all_cores,
)
from toolgrad.fork_server import GC_THRESHOLDS
from toolgrad.settings import ToolgradError

PLACEMENTS = [{"workers": 1}, {"workers": 1, "threads": 3}, {"workers": 2}, {"workers": 2, "chunksize": 3},
              {"workers": 2, "threads": 2}]


@pytest.mark.parametrize("placement", PLACEMENTS, ids=str)
def test_results_come_back_in_input_order(placement: dict[str, int]) -> None:
    assert list(ordered_map(square, range(25), **placement)) == [x * x for x in range(25)]


def test_workers_are_other_processes_and_one_worker_is_this_one() -> None:
    assert set(ordered_map(pid_of, range(4), workers=1)) == {os.getpid()}
    assert os.getpid() not in set(ordered_map(pid_of, range(8), workers=2))


def test_worker_processes_and_the_command_collect_garbage_as_batch_jobs() -> None:
    # the default thresholds (700, 10, 10) rescan the long-lived environments and memos often
    assert set(ordered_map(gc_thresholds, range(4), workers=2)) == {GC_THRESHOLDS}
    script = ("import gc, sys; from benchmarks.cli import app; sys.argv = ['toolgrad', '--version']\n"
              "try:\n    app.main()\nexcept SystemExit:\n    pass\nprint(tuple(gc.get_threshold()))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(GC_THRESHOLDS)


@pytest.mark.parametrize("preload", [True, False])
def test_workers_start_with_the_modules_a_job_names_already_imported(preload: bool) -> None:
    # tabnanny: a module nothing of ours imports, so only the fork server's preload brings it in;
    # a fresh interpreter each time, since a process keeps the fork server it started first
    script = ("from tests.support.executor_jobs import ImportedBefore; from toolgrad.executors import ordered_map; "
              f"print(sorted(set(ordered_map(ImportedBefore('tabnanny', {preload}), range(4), workers=2))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"[{preload}]"


def test_a_fork_server_started_early_serves_the_workers_with_what_it_imported(tmp_path: Path) -> None:
    # started before the job exists (as a command does before its own imports), with a module the
    # job does not name: the workers still start from that server, in order, and a killed one
    # still surfaces as WorkerLost
    script = ("from tests.support.executor_jobs import ImportedBefore, KillOnce, square\n"
              "from toolgrad.executors import WorkerLost, ordered_map, start_fork_server\n"
              "start_fork_server(['tabnanny'])\n"
              "print(sorted(set(ordered_map(ImportedBefore('tabnanny', False), range(4), workers=2))))\n"
              "print(list(ordered_map(square, range(40), workers=2, chunksize=3)) == [x * x for x in range(40)])\n"
              "try:\n"
              f"    list(ordered_map(KillOnce({str(tmp_path / 'killed')!r}, at=5), range(40), workers=2))\n"
              "except WorkerLost:\n"
              "    print('lost')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[True]", "True", "lost"]


def test_a_job_s_worker_modules_are_its_module_and_those_it_names() -> None:
    assert worker_modules(square) == ("tests.support.executor_jobs",)
    assert worker_modules(ImportedBefore("tabnanny", True)) == ("tests.support.executor_jobs", "tabnanny")


def test_threads_run_inside_each_worker_process() -> None:
    """--concurrency in worker processes: each chunk's items run in that many threads there."""
    names = list(ordered_map(thread_name, range(12), workers=2, threads=3))
    assert len(names) == 12 and all(name.startswith("toolgrad-item") for name in names), names


def test_items_are_read_lazily_within_the_window() -> None:
    read: list[int] = []

    def items() -> Iterator[int]:
        for x in range(1000):
            read.append(x)
            yield x

    results = ordered_map(square, items(), workers=2, window=4)
    assert next(results) == 0
    assert len(read) <= 5, f"read {len(read)} items to give the first result with a window of 4"
    results.close()


@pytest.mark.parametrize("placement", PLACEMENTS, ids=str)
def test_an_exception_is_raised_in_the_driver_after_the_results_before_it(placement: dict[str, int]) -> None:
    got: list[int] = []
    with pytest.raises(ValueError, match="item 7 is bad"):
        for x in ordered_map(FailAt(7), range(20), **placement):
            got.append(x)
    assert got == list(range(7))


def test_an_exception_that_cannot_be_pickled_comes_back_as_its_text() -> None:
    with pytest.raises(WorkerFailed, match="Unpicklable: 3/0"):
        list(ordered_map(raise_unpicklable, [3], workers=2))


def test_a_killed_worker_process_raises_worker_lost_not_a_hang(tmp_path: Path) -> None:
    """A worker SIGKILLs itself at item 5 (as the OOM killer would)."""
    got: list[int] = []
    with pytest.raises(WorkerLost, match="a worker process died"):
        for x in ordered_map(KillOnce(str(tmp_path / "killed"), at=5), range(40), workers=2):
            got.append(x)
    assert got == list(range(len(got))) and len(got) <= 5, "results before the lost one, in order, none twice"
    assert (tmp_path / "killed").exists()


def test_placements_no_executor_can_run_are_refused() -> None:
    with pytest.raises(ToolgradError, match="--executor 'spark': choose one of local, ray"):
        check_placement(2, "spark")
    with pytest.raises(ToolgradError, match="--ray-address needs --executor ray"):
        check_placement(2, "local", "127.0.0.1:6379")
    with pytest.raises(ToolgradError, match="--workers 0"):
        list(ordered_map(square, [1], workers=0))
    assert default_workers() >= 1


def test_one_rule_says_where_work_runs_and_what_can_be_sent() -> None:
    assert in_process(1, "local") and not in_process(2, "local") and not in_process(1, "ray")
    assert workers_or_all_cores(3) == 3 and workers_or_all_cores(None) == default_workers()
    assert pickle_problem(square) is None
    assert pickle_problem(lambda x: x) is not None  # a lambda cannot go to another process


def test_ray_without_the_extra_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad set-up: --executor ray where Ray is not installed (its import fails)."""
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ToolgradError, match=r"--executor ray needs Ray: pip install 'toolgrad-kit\[ray\]'"):
        list(ordered_map(square, [1, 2], workers=2, executor="ray"))


def test_worker_processes_exit_when_their_driver_is_killed(tmp_path: Path) -> None:
    """kill -9 of the driver while its two workers run: they must not wait on the queue for ever."""
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    code = ("from tests.support.executor_jobs import RecordPidThenSleep\n"
            "from toolgrad.executors import ordered_map\n"
            f"list(ordered_map(RecordPidThenSleep({str(tmp_path)!r}), range(2), workers=2))\n")
    driver = subprocess.Popen([sys.executable, "-c", code], cwd=root)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.1)
    pids = [int(p.stem) for p in tmp_path.glob("*.pid")]
    assert len(pids) == 2, "the workers never started"
    driver.kill()
    driver.wait()
    deadline = time.monotonic() + 30  # a hang guard, not a speed claim: they check every second
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pids), f"worker processes {_alive(pids)} outlived their driver"


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive

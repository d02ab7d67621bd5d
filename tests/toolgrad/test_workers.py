"""`toolgrad generate --workers N`: the same bytes as one worker, and a worker process killed
mid-run loses or doubles no line (the run stops, exit 1, and the same command resumes)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.support.executor_jobs import KillOnceOffline
from tests.toolgrad.test_dataset import run_cli
from toolgrad.dataset.lines import read_samples, tools_path, traces_path
from toolgrad.dataset.runner import generate_dataset
from toolgrad.executors import WorkerLost
from toolgrad.settings import GenerateSettings, ToolgradError

ENVS = ["adafruit", "baskets", "crm"]
TIMINGS = ("wall_seconds", "samples_per_second")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def summary_without_timings(path: Path) -> dict[str, object]:
    """The run summary less what differs run to run by design: timings, the dataset's name and
    the placement flags the run was given."""
    summary = json.loads(path.with_name(path.stem + ".summary.json").read_text())
    for key in (*TIMINGS, "dataset"):
        summary.pop(key)
    for key in ("workers", "output"):
        summary["config"].pop(key)
    summary["config"].pop("schema")
    return summary


def test_two_workers_write_the_bytes_of_one(tmp_path: Path) -> None:
    outputs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.jsonl"
        done = run_cli("generate", *(f"--env={e}" for e in ENVS), "--n", "12", "--seed", "5",
                       "--workers", workers, "-o", str(out))
        assert done.returncode == 0, done.stderr.decode()
        outputs[workers] = out
    assert sha256(outputs["1"]) == sha256(outputs["2"])
    for beside in (traces_path, tools_path):  # the sidecars too: a trace out of order would certify nothing
        assert sha256(beside(outputs["1"])) == sha256(beside(outputs["2"]))
    assert [s.seed for s in read_samples(outputs["2"])] == sorted({s.seed for s in read_samples(outputs["2"])})
    assert summary_without_timings(outputs["1"]) == summary_without_timings(outputs["2"])


def test_the_command_starts_its_fork_server_with_the_modules_a_generate_worker_imports() -> None:
    from toolgrad.cli.commands import GENERATE_WORKER_MODULES
    from toolgrad.dataset.seed_order import SeedJob
    from toolgrad.executors import worker_modules

    assert worker_modules(SeedJob) == GENERATE_WORKER_MODULES


def test_concurrency_threads_inside_workers_do_not_change_the_bytes(tmp_path: Path) -> None:
    one, mixed = tmp_path / "one.jsonl", tmp_path / "mixed.jsonl"
    generate_dataset(GenerateSettings(envs=["petstore", "museum"], n=8, seed=3, output=str(one)))
    generate_dataset(GenerateSettings(envs=["petstore", "museum"], n=8, seed=3, output=str(mixed),
                                      workers=2, concurrency=3))
    assert one.read_bytes() == mixed.read_bytes()
    assert traces_path(one).read_bytes() == traces_path(mixed).read_bytes()


def test_a_killed_worker_stops_the_run_and_the_same_command_resumes_without_loss(tmp_path: Path) -> None:
    """The first worker process to make a policy SIGKILLs itself (an OOM kill)."""
    reference, out = tmp_path / "reference.jsonl", tmp_path / "killed.jsonl"
    generate_dataset(GenerateSettings(envs=ENVS, n=10, seed=0, output=str(reference)))
    killer = KillOnceOffline(str(tmp_path / "killed"), os.getpid())
    settings = GenerateSettings(envs=ENVS, n=10, seed=0, output=str(out), workers=2)
    with pytest.raises(WorkerLost, match=r"a worker process died.*the same command resumes"):
        generate_dataset(settings, policy_factory=killer)
    assert (tmp_path / "killed").exists()
    kept = [s.seed for s in read_samples(out)] if out.exists() else []
    assert kept == list(range(len(kept))), "only whole lines, in seed order, from the first seed"
    generate_dataset(settings, policy_factory=killer)  # the marker exists: no worker dies this time
    assert out.read_bytes() == reference.read_bytes()


def test_a_policy_factory_that_cannot_be_pickled_is_refused_with_workers(tmp_path: Path) -> None:
    """Bad input: a lambda as policy factory, with two worker processes."""
    from toolgrad.policies.offline.policy import OfflinePolicy

    settings = GenerateSettings(envs=["petstore"], n=2, output=str(tmp_path / "d.jsonl"), workers=2)
    with pytest.raises(ToolgradError, match="policy factory must be picklable"):
        generate_dataset(settings, policy_factory=lambda box: OfflinePolicy(box))


def test_bad_placement_flags_exit_2_with_one_line(tmp_path: Path) -> None:
    """Bad input: --workers 0, an unknown --executor, --ray-address without --executor ray."""
    out = str(tmp_path / "d.jsonl")
    for flags, said in ((["--workers", "0"], "--workers"), (["--executor", "spark"], "--executor"),
                        (["--ray-address", "127.0.0.1:1"], "--ray-address needs --executor ray")):
        done = run_cli("generate", "--env", "petstore", "--n", "1", *flags, "-o", out)
        err = done.stderr.decode()
        assert done.returncode == 2 and said in err and "Traceback" not in err, err

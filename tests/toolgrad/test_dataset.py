"""The dataset file: canonical lines, same bytes across processes and concurrency, kill -9
and resume, failed seeds, sidecar files, settings and CLI errors."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from toolgrad.dataset.lines import encode_sample, read_samples
from toolgrad.dataset.provenance import git_revision
from toolgrad.dataset.runner import generate_dataset
from toolgrad.events import SampleDone
from toolgrad.loop.policy import Context, StageError
from toolgrad.policies.offline.policy import OfflinePolicy
from toolgrad.records import Proposal, RunSummary, Sample
from toolgrad.settings import GENERATE_ENV, GenerateSettings, ToolgradError, from_environment, sidecar
from toolgrad.toolbox import Toolbox

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, hashseed: str = "0") -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    env = {k: v for k, v in env.items() if not k.startswith("TOOLGRAD_") or k == "TOOLGRAD_ENVS_DIR"}
    return subprocess.Popen([sys.executable, "-m", "benchmarks.cli.app", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run_cli(*args: str, hashseed: str = "0") -> subprocess.CompletedProcess[bytes]:
    proc = cli(*args, hashseed=hashseed)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def settings(path: Path, **kw: Any) -> GenerateSettings:
    base: dict[str, Any] = {"envs": ["petstore", "museum"], "n": 6, "seed": 0, "output": str(path)}
    return GenerateSettings.model_validate({**base, **kw})


def test_lines_are_canonical_and_ids_hash_the_record(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    summary = generate_dataset(settings(path))
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == summary.samples == summary.new_samples > 0
    seeds = []
    for line in lines:
        record = orjson.loads(line)
        sample = Sample.model_validate(record)
        assert encode_sample(sample) == line
        body = {k: v for k, v in record.items() if k != "id"}
        assert sample.id == hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        assert sample.provenance.versions["toolgrad"] and sample.provenance.git_revision == git_revision()
        assert set(sample.provenance.environments) == {step.env for step in sample.steps()}  # schema 4
        assert sample.provenance.generator["environments"] == ["museum", "petstore"]
        assert sample.provenance.generator["iterations"] == 10
        seeds.append(sample.seed)
    assert seeds == sorted(seeds)


def test_same_seed_same_bytes_across_processes(tmp_path: Path) -> None:
    outputs = []
    for hashseed in ("1", "2"):
        out = tmp_path / f"h{hashseed}.jsonl"
        done = run_cli("generate", "--env", "petstore", "--env", "tictactoe", "--n", "5", "--seed", "3",
                       "-o", str(out), hashseed=hashseed)
        assert done.returncode == 0, done.stderr.decode()
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] and outputs[0]


def test_concurrency_does_not_change_the_bytes(tmp_path: Path) -> None:
    one, four = tmp_path / "c1.jsonl", tmp_path / "c4.jsonl"
    generate_dataset(settings(one, n=10, seed=20))
    generate_dataset(settings(four, n=10, seed=20, concurrency=4))
    assert one.read_bytes() == four.read_bytes()


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    n = "150"
    args = ("generate", "--env", "petstore", "--n", n, "--seed", "100")
    killed = tmp_path / "killed.jsonl"
    traces = sidecar(killed, ".traces.jsonl")
    proc = cli(*args, "-o", str(killed))
    # a moment that differs run to run: after 5 to 20 lines, then 0 to 50 ms more
    lines_before, extra_ms = 5 + os.urandom(1)[0] % 16, os.urandom(1)[0] % 51
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if killed.exists() and killed.read_bytes().count(b"\n") >= lines_before:
            break
        time.sleep(0.005)
    time.sleep(extra_ms / 1000)
    assert proc.poll() is None, "the run finished before it could be killed: raise n"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    data = killed.read_bytes()
    assert data.endswith(b"\n")
    trace_lines = traces.read_bytes().splitlines()
    assert len(trace_lines) >= data.count(b"\n"), f"killed after {lines_before} lines + {extra_ms} ms"
    for line, trace in zip(data.splitlines(), trace_lines, strict=False):  # every sample's trace is there
        sample = Sample.model_validate(orjson.loads(line))
        assert sample.trace_sha256 == hashlib.sha256(trace).hexdigest()
    resumed = run_cli(*args, "-o", str(killed))
    assert resumed.returncode == 0, resumed.stderr.decode()
    whole = tmp_path / "whole.jsonl"
    generate_dataset(GenerateSettings(envs=["petstore"], n=int(n), seed=100, output=str(whole)))
    assert killed.read_bytes() == whole.read_bytes()
    assert traces.read_bytes() == sidecar(whole, ".traces.jsonl").read_bytes()
    seeds = [s.seed for s in read_samples(killed)]
    assert len(seeds) == len(set(seeds))


def test_resume_skips_finished_seeds(tmp_path: Path) -> None:
    path, whole = tmp_path / "r.jsonl", tmp_path / "w.jsonl"
    generate_dataset(settings(path, n=3))
    summary = generate_dataset(settings(path, n=6))
    generate_dataset(settings(whole, n=6))
    assert path.read_bytes() == whole.read_bytes()
    assert summary.new_samples == 6 - 3 - len([s for s in summary.failed_seeds if s < 3])
    again = generate_dataset(settings(path, n=6))
    assert again.new_samples == 0 and path.read_bytes() == whole.read_bytes()


def test_a_partial_last_line_is_truncated_with_a_warning(tmp_path: Path) -> None:
    path, whole = tmp_path / "p.jsonl", tmp_path / "w.jsonl"
    generate_dataset(settings(path, n=3))
    with open(path, "ab") as fh:
        fh.write(b'{"schema_version": "1", "id": "trunc')
    notices: list[str] = []
    generate_dataset(settings(path, n=4), events=lambda e: notices.append(str(e)))
    generate_dataset(settings(whole, n=4))
    assert path.read_bytes() == whole.read_bytes()
    assert any("partial last line" in n for n in notices)


class FailsOddSeeds(OfflinePolicy):
    def propose(self, ctx: Context) -> list[Proposal]:
        if ctx.seed % 2:
            raise StageError("propose", "odd seed")
        return super().propose(ctx)


def test_failed_seeds_are_listed_not_written(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    done: list[SampleDone] = []
    summary = generate_dataset(settings(path, n=6), policy_factory=FailsOddSeeds,
                               events=lambda e: done.append(e) if isinstance(e, SampleDone) else None)
    assert [s.seed for s in read_samples(path)] == [0, 2, 4]
    assert summary.failed_seeds == [1, 3, 5]
    assert [d.seed for d in done] == list(range(6))
    assert all(d.error == "odd seed" for d in done if not d.ok)
    on_disk = RunSummary.model_validate(orjson.loads(sidecar(path, ".summary.json").read_bytes()))
    assert on_disk.failed_seeds == [1, 3, 5] and on_disk.config["seed"] == 0
    # resuming does not retry them: they are below the highest seed written
    again = generate_dataset(settings(path, n=6), policy_factory=FailsOddSeeds)
    assert again.new_samples == 0 and again.failed_seeds == [1, 3, 5]


def test_schema_and_summary_are_written_beside_the_data(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    generate_dataset(settings(path, n=2))
    schema = orjson.loads((tmp_path / "s.schema.json").read_bytes())
    assert "chains" in schema["properties"] and "provenance" in schema["properties"]
    summary = orjson.loads((tmp_path / "s.summary.json").read_bytes())
    assert summary["samples_per_second"] >= 0 and summary["wall_seconds"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "s.jsonl", "s.schema.json", "s.summary.json", "s.tools.json", "s.traces.jsonl"]


def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    generate_dataset(settings(path, n=2))
    with pytest.raises(ToolgradError, match="other settings"):
        generate_dataset(settings(path, n=4, iterations=3))


def test_settings_come_from_flags_then_environment() -> None:
    environ = {"TOOLGRAD_N": "7", "TOOLGRAD_ENV": "petstore, museum", "TOOLGRAD_REPLAY_ONLY": "true"}
    s = from_environment(GenerateSettings, GENERATE_ENV, environ, seed=4)
    assert (s.n, s.envs, s.seed, s.replay_only) == (7, ["petstore", "museum"], 4, True)
    assert from_environment(GenerateSettings, GENERATE_ENV, environ, n=2).n == 2
    with pytest.raises(ToolgradError, match="TOOLGRAD_CONCURRENCY"):
        from_environment(GenerateSettings, GENERATE_ENV, {"TOOLGRAD_CONCURRENCY": "zero"})
    assert set(GENERATE_ENV) == set(GenerateSettings.model_fields)
    assert all(v.startswith("TOOLGRAD_") for v in GENERATE_ENV.values())


def test_openai_without_its_factory_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "toolgrad.policies.model.policy", None)
    with pytest.raises(ToolgradError, match="make_llm_policy"):
        generate_dataset(settings(tmp_path / "o.jsonl", llm="openai", model="m"))
    with pytest.raises(ToolgradError, match="--model"):
        generate_dataset(settings(tmp_path / "o.jsonl", llm="openai"))


@pytest.mark.parametrize("args", [
    ["generate", "--env", "no-such-env", "-o", "{tmp}/a.jsonl"],
    ["generate", "--env", "petstore", "--llm", "openai", "-o", "{tmp}/a.jsonl"],
    ["generate", "--env", "petstore", "--n", "-1", "-o", "{tmp}/a.jsonl"],
    ["generate", "--env", "petstore", "-o", "{tmp}/missing/a.jsonl"],
    ["export", "{tmp}/none.jsonl", "--format", "openai", "-o", "{tmp}/x.jsonl"],
    ["export", "{tmp}/none.jsonl", "--format", "yaml", "-o", "{tmp}/x.jsonl"],
])
def test_cli_errors_exit_2_without_a_traceback(tmp_path: Path, args: list[str]) -> None:
    from benchmarks.cli.app import app

    result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "error" in result.output.lower()


def test_cli_generate_prints_the_seed_and_a_summary(tmp_path: Path) -> None:
    from benchmarks.cli.app import app

    out = tmp_path / "g.jsonl"
    result = CliRunner().invoke(app, ["generate", "--env", "tictactoe", "--n", "2", "--seed", "9", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "seed 9" in result.output and "samples in file" in result.output
    assert out.exists()


def test_toolbox_per_worker_thread_is_reused(tmp_path: Path) -> None:
    made: list[int] = []

    def factory(box: Toolbox) -> OfflinePolicy:
        made.append(id(box))
        return OfflinePolicy(box)

    generate_dataset(settings(tmp_path / "t.jsonl", n=6, concurrency=2), policy_factory=factory)
    assert len(set(made)) <= 3  # the caller's (used for provenance) and one per worker


# -- one writer per output file --------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from toolgrad.dataset.files import exclusive_writer
with exclusive_writer(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_exits_2_naming_the_holder_and_a_dead_holder_leaves_no_lock(tmp_path: Path) -> None:
    out = tmp_path / "one.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        with pytest.raises(ToolgradError, match=rf"being written by process {holder.pid}\b"):
            generate_dataset(settings(out, n=1))
        done = run_cli("generate", "--env", "tictactoe", "--n", "1", "-o", str(out))
        assert done.returncode == 2 and f"process {holder.pid}" in done.stderr.decode()
        assert b"Traceback" not in done.stderr and not out.exists(), "the second writer wrote nothing"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # killed while holding it: the kernel released the lock; the stale file is taken over
    assert (tmp_path / "one.jsonl.lock").exists()
    summary = generate_dataset(settings(out, n=1))
    assert summary.new_samples == 1 and not (tmp_path / "one.jsonl.lock").exists()


def test_two_concurrent_runs_on_one_output_never_interleave(tmp_path: Path) -> None:
    out = tmp_path / "race.jsonl"
    runs = [cli("generate", "--env", "petstore", "--n", "6", "--seed", "0", "-o", str(out)) for _ in range(2)]
    codes = sorted(proc.wait(timeout=300) for proc in runs)
    seeds = [orjson.loads(line)["seed"] for line in out.read_bytes().splitlines()]
    # one ran (or both, one after the other: the second resumes and adds nothing)
    assert codes in ([0, 0], [0, 2]) and seeds == list(range(6)), (codes, seeds)


def test_resuming_a_file_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    generate_dataset(settings(path, n=1))
    record = orjson.loads(path.read_bytes())
    record["schema_version"] = "2"  # as an older toolgrad wrote it
    path.write_bytes(orjson.dumps(record) + b"\n")
    with pytest.raises(ToolgradError, match="a schema 2 record; this toolgrad writes schema 4"):
        generate_dataset(settings(path, n=2))

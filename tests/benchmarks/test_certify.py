"""Certification: a real dataset certifies at 100%, and every kind of tampering is caught,
named by its chain, step and field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmarks.certify.certificate import Certificate, certificate_bytes, certify_file
from benchmarks.certify.replay import DatasetError
from benchmarks.cli.app import app
from tests.support.docker_tier import tier_skip_reason

Record = dict[str, Any]


def lines_of(path: Path) -> list[Record]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write(path: Path, records: list[Record]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def tampered(dataset: Path, tmp_path: Path, change: Callable[[list[Record]], tuple[int, int, int]]) -> tuple[Path, tuple[int, int, int]]:
    """A copy of the dataset with ``change`` applied; it returns (sample index, chain, step)."""
    records = lines_of(dataset)
    where = change(records)
    return write(tmp_path / "tampered.jsonl", records), where


def steps(records: list[Record]) -> list[tuple[int, int, int, Record]]:
    return [(i, ci, si, step) for i, r in enumerate(records) for ci, c in enumerate(r["chains"])
            for si, step in enumerate(c["steps"])]


def verdict_of(cert: Certificate, index: int) -> Any:
    bad = [s for s in cert.samples if not s.ok]
    assert [s.line for s in bad] == [index + 1], "exactly the tampered sample fails"
    return bad[0]


def test_a_real_dataset_certifies_at_100_percent(dataset_path: Path) -> None:
    cert = certify_file(dataset_path)
    assert cert.pass_rate == 1.0 and cert.ok
    assert cert.sample_count == 8 and all(s.verdict == "pass" and s.replayed == s.steps for s in cert.samples)
    assert cert.checks == dict.fromkeys(("replay", "solvable", "grounded", "coherent", "unique", "trace"), 8)
    assert cert.traces == "checked" and cert.traces_sha256 is not None  # the sidecar, line by line
    assert {fp["env"] for fp in cert.environments} == {"petstore", "museum"}
    records = lines_of(dataset_path)
    assert any(step["sources"] for *_, step in steps(records)), "the dataset has argument sources to check"
    assert len({step["state_hash"] for *_, step in steps(records)}) > 2, "the dataset has writes"


def test_a_synthesised_dataset_replays_but_is_not_valid(synthetic_path: Path) -> None:
    # random real calls replay byte for byte, but their query ("synthetic sample N") states
    # nothing: replay is necessary, not sufficient
    cert = certify_file(synthetic_path)
    assert cert.step_count > 0 and cert.checks["replay"] == cert.sample_count
    assert cert.checks["solvable"] < cert.sample_count and cert.pass_rate < 1.0


def test_certificate_bytes_are_deterministic_across_runs_and_workers(dataset_path: Path) -> None:
    one = certificate_bytes(certify_file(dataset_path))
    assert certificate_bytes(certify_file(dataset_path)) == one
    assert certificate_bytes(certify_file(dataset_path, workers=2)) == one
    text = one.decode()
    assert '"dataset_sha256"' in text and "time" not in json.loads(text), "no timestamps"


def first_step(records: list[Record], accept: Callable[[Record], bool]) -> tuple[int, int, int, Record]:
    return next(item for item in steps(records) if accept(item[3]))


def test_a_tampered_response_is_caught_at_its_step_and_pointer(dataset_path: Path, tmp_path: Path) -> None:
    def change(records: list[Record]) -> tuple[int, int, int]:
        i, ci, si, step = first_step(records, lambda s: isinstance(s["response"], dict) and bool(s["response"]))
        key = sorted(step["response"])[0]
        step["response"][key] = "tampered"
        return i, ci, si

    path, (i, ci, si) = tampered(dataset_path, tmp_path, change)
    v = verdict_of(certify_file(path), i)
    d = v.first_divergence
    assert v.verdict == "diverged" and (d["chain"], d["step"], d["field"]) == (ci, si, "response")
    assert d["got"] != "tampered" and d["expected"] == "tampered" and d["pointer"].startswith("/")


def test_a_tampered_status_is_caught(dataset_path: Path, tmp_path: Path) -> None:
    def change(records: list[Record]) -> tuple[int, int, int]:
        i, ci, si, step = first_step(records, lambda s: True)
        step["status"] = 299
        return i, ci, si

    path, (i, ci, si) = tampered(dataset_path, tmp_path, change)
    d = verdict_of(certify_file(path), i).first_divergence
    assert (d["chain"], d["step"], d["field"], d["expected"]) == (ci, si, "status", 299)


def test_a_tampered_state_hash_is_caught(dataset_path: Path, tmp_path: Path) -> None:
    def change(records: list[Record]) -> tuple[int, int, int]:
        i, ci, si, step = first_step(records, lambda s: True)
        step["state_hash"] = "0" * 64
        return i, ci, si

    path, (i, ci, si) = tampered(dataset_path, tmp_path, change)
    d = verdict_of(certify_file(path), i).first_divergence
    assert (d["chain"], d["step"], d["field"], d["expected"]) == (ci, si, "state_hash", "0" * 64)


def test_a_tampered_argument_is_caught_at_its_step(dataset_path: Path, tmp_path: Path) -> None:
    # an unsourced argument: only the replay can notice (another request, another answer)
    def change(records: list[Record]) -> tuple[int, int, int]:
        i, ci, si, step = first_step(
            records, lambda s: 200 <= s["status"] < 300 and any(f"/{k}" not in s["sources"] for k in s["arguments"])
            and isinstance(s["response"], (dict, list)) and bool(s["response"]))
        key = next(k for k in sorted(step["arguments"]) if f"/{k}" not in step["sources"])
        step["arguments"][key] = {"tampered": True} if not isinstance(step["arguments"][key], dict) else "x"
        return i, ci, si

    path, (i, ci, si) = tampered(dataset_path, tmp_path, change)
    d = verdict_of(certify_file(path), i).first_divergence
    assert (d["chain"], d["step"]) == (ci, si) and d["field"] in ("status", "response", "state_hash", "call")


def test_a_sourced_argument_that_differs_from_its_source_is_caught(dataset_path: Path, tmp_path: Path) -> None:
    def change(records: list[Record]) -> tuple[int, int, int]:
        i, ci, si, step = first_step(records, lambda s: bool(s["sources"]))
        arg = sorted(step["sources"])[0]  # a pointer into the arguments: "/petId"
        step["arguments"][arg[1:]] = "not-the-output"
        return i, ci, si

    path, (i, ci, si) = tampered(dataset_path, tmp_path, change)
    d = verdict_of(certify_file(path), i).first_divergence
    assert (d["chain"], d["step"]) == (ci, si) and d["field"].startswith("sources.")
    assert d["got"] == "not-the-output"


@pytest.mark.parametrize("how", ["pointer", "forward", "missing-step"])
def test_a_tampered_source_is_caught(how: str, dataset_path: Path, tmp_path: Path) -> None:
    def change(records: list[Record]) -> tuple[int, int, int]:
        i, ci, si, step = first_step(records, lambda s: bool(s["sources"]))
        source = step["sources"][sorted(step["sources"])[0]]
        if how == "pointer":
            source["pointer"] = "/no/such/place"
        elif how == "forward":
            source["chain"], source["step"] = ci, si  # itself: not an earlier step
        else:
            source["chain"] = 99
        return i, ci, si

    path, (i, ci, si) = tampered(dataset_path, tmp_path, change)
    d = verdict_of(certify_file(path), i).first_divergence
    assert (d["chain"], d["step"]) == (ci, si) and d["field"].startswith("sources.")


@pytest.mark.parametrize("key", ["spec_sha256", "faker_version", "simulator_version", "fixtures"])
def test_a_fingerprint_that_is_not_the_installed_one_is_its_own_verdict(
        key: str, dataset_path: Path, tmp_path: Path) -> None:
    def change(records: list[Record]) -> tuple[int, int, int]:
        fp = records[0]["provenance"]["environments"]["petstore"]
        fp[key] = 999 if key == "fixtures" else "0.0.0-other"
        return 0, -1, -1

    path, _ = tampered(dataset_path, tmp_path, change)
    v = verdict_of(certify_file(path), 0)
    assert v.verdict == "fingerprint_mismatch" and v.replayed == 0
    assert v.first_divergence["field"] == f"fingerprint.petstore.{key}"


def test_an_environment_that_is_not_installed_is_its_own_verdict(dataset_path: Path, tmp_path: Path) -> None:
    def change(records: list[Record]) -> tuple[int, int, int]:
        envs = records[0]["provenance"]["environments"]
        envs["nowhere"] = dict(envs["petstore"], env="nowhere")
        return 0, -1, -1

    path, _ = tampered(dataset_path, tmp_path, change)
    v = verdict_of(certify_file(path), 0)
    assert v.verdict == "environment_missing" and v.first_divergence["field"] == "environment.nowhere"


def test_a_tampered_query_fails_the_content_id(dataset_path: Path, tmp_path: Path) -> None:
    def change(records: list[Record]) -> tuple[int, int, int]:
        records[2]["query"] += " (edited)"
        return 2, -1, -1

    path, _ = tampered(dataset_path, tmp_path, change)
    v = verdict_of(certify_file(path), 2)
    assert v.verdict == "id_mismatch" and v.first_divergence["field"] == "id"


def test_a_malformed_line_is_an_error_naming_the_line(dataset_path: Path, tmp_path: Path) -> None:
    text = dataset_path.read_text().splitlines()
    text.insert(2, '{"id": "x", "seed": "not a number"}')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:3: not a valid sample"):
        certify_file(bad)
    result = CliRunner().invoke(app, ["certify", str(bad)])
    assert result.exit_code == 2 and ":3:" in result.output and "Traceback" not in result.output
    (tmp_path / "junk.jsonl").write_text('{"chains": [\n')
    result = CliRunner().invoke(app, ["certify", str(tmp_path / "junk.jsonl")])
    assert result.exit_code == 2 and "junk.jsonl:1:" in result.output


def test_cli_json_exit_codes_and_certificate_file(dataset_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "cert.json"
    result = CliRunner().invoke(app, ["certify", str(dataset_path), "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["pass_rate"] == 1.0 and len(printed["samples"]) == 8
    assert out.read_bytes() == certificate_bytes(certify_file(dataset_path))
    assert result.stdout == out.read_text(), "--json prints the certificate's own text"

    records = lines_of(dataset_path)
    records[1]["chains"][0]["steps"][0]["status"] = 299
    result = CliRunner().invoke(app, ["certify", str(write(tmp_path / "t.jsonl", records)), "-o", str(out)])
    assert result.exit_code == 1 and "7/8" in result.stdout and "status" in result.stdout


def _first_lines(dataset: Path, tmp_path: Path, n: int) -> Path:
    subset = tmp_path / "subset.jsonl"
    subset.write_text("".join(dataset.read_text().splitlines(keepends=True)[:n]))
    return subset


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_local_processes_give_the_same_certificate_bytes(dataset_path: Path, tmp_path: Path) -> None:
    subset = _first_lines(dataset_path, tmp_path, 3)
    expected = certificate_bytes(certify_file(subset))
    assert certificate_bytes(certify_file(subset, backend="local")) == expected
    assert certificate_bytes(certify_file(subset, backend="local", workers=2)) == expected


@pytest.mark.docker
@pytest.mark.timeout(300)
def test_containers_give_the_same_certificate_bytes(dataset_path: Path, tmp_path: Path) -> None:
    reason = tier_skip_reason()
    if reason is not None:
        pytest.skip(f"docker tier: {reason}")
    subset = _first_lines(dataset_path, tmp_path, 3)
    assert certificate_bytes(certify_file(subset, backend="docker")) == certificate_bytes(certify_file(subset))


def test_certificate_bytes_do_not_depend_on_the_hash_seed(dataset_path: Path, tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "4242"):
        out = tmp_path / f"cert-{seed}.json"
        done = subprocess.run([sys.executable, "-m", "benchmarks.cli.app", "certify", str(dataset_path), "-o", str(out)],
                              env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == certificate_bytes(certify_file(dataset_path))


def test_certify_cli_with_two_workers_writes_the_certificate_of_one(dataset_path: Path, tmp_path: Path) -> None:
    certificates = {}
    for workers in ("1", "2"):
        target = tmp_path / f"w{workers}.certificate.json"
        result = CliRunner().invoke(app, ["certify", str(dataset_path), "--workers", workers, "-o", str(target)])
        assert result.exit_code == 0, result.output
        certificates[workers] = target.read_bytes()
    assert certificates["1"] == certificates["2"] == certificate_bytes(certify_file(dataset_path))


def test_the_certify_command_in_a_fresh_process_with_two_workers_writes_the_bytes_of_one(
        dataset_path: Path, tmp_path: Path) -> None:
    # a fresh process: its fork server is the one the command starts before its own imports
    out = tmp_path / "w2.certificate.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.cli.app", "certify", str(dataset_path), "--workers", "2",
                           "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == certificate_bytes(certify_file(dataset_path))


@pytest.mark.parametrize("backend", ["inprocess", "local", "docker"])
def test_the_command_starts_its_fork_server_with_the_modules_a_certify_worker_imports(backend: str) -> None:
    from benchmarks.certify.certificate import CertifyJob
    from benchmarks.certify.sandboxes import ProviderPlan
    from benchmarks.cli.commands import certify_worker_modules
    from toolgrad.executors import worker_modules

    assert certify_worker_modules(backend) == worker_modules(CertifyJob(ProviderPlan(backend, ()), "data.jsonl"))

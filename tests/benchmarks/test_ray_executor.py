"""`--executor ray` on a local Ray (num_cpus=2): the datasets and certificates of one process, and
a Ray worker killed mid-run retried by Ray without losing or doubling a line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.certify.certificate import certificate_bytes, certify_file
from tests.support.executor_jobs import KillOnce, KillOnceOffline
from toolgrad.dataset.lines import read_samples, traces_path
from toolgrad.dataset.runner import generate_dataset
from toolgrad.executors import ordered_map
from toolgrad.settings import GenerateSettings

pytestmark = pytest.mark.slow  # starting a local Ray takes seconds; three tests take ~40 s
ray = pytest.importorskip("ray", reason="Ray is not installed: the [ray] extra (pip install -e '.[dev,ray]')")

ROOT = Path(__file__).resolve().parents[2]
ENVS = ["adafruit", "baskets", "crm"]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """One local Ray for the module (starting one takes seconds); its workers import this checkout."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        yield ray
    finally:
        ray.shutdown()


def offline(out: Path, **kw: Any) -> GenerateSettings:
    return GenerateSettings(envs=ENVS, n=10, seed=0, output=str(out), **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ray") / "one.jsonl"
    generate_dataset(offline(out))
    return out


def test_ray_gives_the_dataset_and_certificate_of_one_process(local_ray: Any, reference: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "ray.jsonl"
    summary = generate_dataset(offline(out, workers=2, executor="ray"))
    assert summary.new_samples > 0 and out.read_bytes() == reference.read_bytes()
    assert traces_path(out).read_bytes() == traces_path(reference).read_bytes()
    expected = certificate_bytes(certify_file(reference))
    assert certificate_bytes(certify_file(out, workers=2, executor="ray")) == expected


def test_a_killed_ray_worker_is_retried_and_no_line_is_lost_or_doubled(local_ray: Any, reference: Path,
                                                                       tmp_path: Path) -> None:
    """The first Ray worker to make a policy SIGKILLs itself; Ray runs its task again."""
    marker = tmp_path / "killed"
    out = tmp_path / "ray.jsonl"
    generate_dataset(offline(out, workers=2, executor="ray"), policy_factory=KillOnceOffline(str(marker), os.getpid()))
    assert marker.exists(), "no worker was killed: the test proves nothing"
    assert int(marker.read_text()) != os.getpid()
    seeds = [s.seed for s in read_samples(out)]
    assert len(seeds) == len(set(seeds)) and out.read_bytes() == reference.read_bytes()


def test_ordered_map_on_ray_keeps_order_across_a_killed_worker(local_ray: Any, tmp_path: Path) -> None:
    got = list(ordered_map(KillOnce(str(tmp_path / "killed"), at=7), range(30), workers=2, executor="ray",
                           chunksize=4))
    assert got == list(range(30)) and (tmp_path / "killed").exists()


def test_ray_eval_gives_the_report_of_one_process(local_ray: Any, reference: Path, scripted_openai: Any) -> None:
    """Each Ray task connects its own client to the same (scripted) endpoint from ModelEndpoint settings."""
    from benchmarks.certify.replay import read_dataset
    from benchmarks.certify.sandboxes import SandboxProvider
    from benchmarks.evaluate.report import build_report, report_bytes
    from benchmarks.evaluate.runner import EvalSettings, ModelEndpoint, evaluate_dataset
    from tests.benchmarks.test_evaluate import replay_handler

    dataset = read_dataset(reference)
    scripted_openai.script(replay_handler(list(dataset.samples())))
    endpoint = ModelEndpoint(scripted_openai.model, scripted_openai.base_url)
    settings = EvalSettings(k=2, max_steps=20)
    reports = []
    for model, placement in ((endpoint.connect(), {}), (endpoint, {"workers": 2, "executor": "ray"})):
        with SandboxProvider() as provider:
            events = list(evaluate_dataset(dataset, model, provider, settings, **placement))  # type: ignore[arg-type]
            report = build_report(dataset, events, model=endpoint.model, base_url=endpoint.base_url,
                                  settings=settings, backend="inprocess",
                                  environments=provider.installed_fingerprints())
        reports.append(report_bytes(report))
    assert reports[0] == reports[1] and report.metrics["success_rate"] == 1.0

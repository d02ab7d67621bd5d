"""Shared fixtures for the generator tests: offline datasets per shipped environment (made once
per session) and a replay check on fresh toolbox sessions."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from simulator.canonical import canonical_json
from simulator.environments.environment import shipped_environments
from tests.support.openai_fixtures import scripted_openai, scripted_openai_server  # noqa: F401 (fixtures)
from toolgrad.dataset.lines import read_samples
from toolgrad.dataset.runner import generate_dataset
from toolgrad.records import Sample
from toolgrad.settings import GenerateSettings
from toolgrad.toolbox import Toolbox

SHIPPED = shipped_environments()
SAMPLES_PER_ENV = 6

Replay = Callable[[Sample], list[str]]


@pytest.fixture(scope="session")
def offline_datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """env name -> an offline dataset of seeds 0..SAMPLES_PER_ENV-1 over that environment."""
    root = tmp_path_factory.mktemp("offline")
    paths = {}
    for env in SHIPPED:
        path = root / f"{env}.jsonl"
        generate_dataset(GenerateSettings(envs=[env], n=SAMPLES_PER_ENV, seed=0, output=str(path)))
        paths[env] = path
    return paths


@pytest.fixture(scope="session")
def offline_samples(offline_datasets: dict[str, Path]) -> dict[str, list[Sample]]:
    return {env: list(read_samples(path)) for env, path in offline_datasets.items()}


@pytest.fixture(scope="session")
def replay() -> Replay:
    """Re-execute a sample's chains (chains in order, steps in order) on a fresh session; the
    list of disagreements with the record (status, canonical body, state hash) is empty when
    the sample replays."""
    boxes: dict[tuple[str, ...], Toolbox] = {}
    sessions = itertools.count()

    def run(sample: Sample) -> list[str]:
        envs = tuple(sorted(sample.provenance.generator["environments"]))
        box = boxes.get(envs)
        if box is None:
            box = boxes[envs] = Toolbox.in_process(envs)
        session = f"replay-{next(sessions)}"
        problems = []
        for ci, chain in enumerate(sample.chains):
            for si, step in enumerate(chain.steps):
                got = box.call(session, step.tool, step.arguments)
                where = f"seed {sample.seed} chain {ci} step {si} ({step.tool})"
                if got.status != step.status:
                    problems.append(f"{where}: status {got.status} != {step.status}")
                if canonical_json(got.body) != canonical_json(step.response):
                    problems.append(f"{where}: response differs")
                if got.state_hash != step.state_hash:
                    problems.append(f"{where}: state hash differs")
        box.drop(session)
        return problems

    return run

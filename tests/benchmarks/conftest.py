"""Real datasets for the benchmarks' tests: every step a call that ran on the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.perf.certify import synthesise_dataset
from tests.support.openai_fixtures import scripted_openai, scripted_openai_server  # noqa: F401 (fixtures)
from toolgrad.dataset.runner import generate_dataset
from toolgrad.settings import GenerateSettings

ENVS = ("petstore", "museum")
SAMPLES = 8


@pytest.fixture(scope="session")
def dataset_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight samples (seeds 0..7) over petstore and museum from the offline generator."""
    path = tmp_path_factory.mktemp("data") / "data.jsonl"
    generate_dataset(GenerateSettings.model_validate({"envs": list(ENVS), "n": SAMPLES, "seed": 0, "output": str(path)}))
    return path


@pytest.fixture(scope="session")
def synthetic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight samples synthesised through real Toolbox calls (random tools, detected sources)."""
    path = tmp_path_factory.mktemp("synthetic") / "synthetic.jsonl"
    return synthesise_dataset(ENVS, SAMPLES, path)

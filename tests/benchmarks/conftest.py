"""Real datasets for the benchmarks' tests: every step a call that ran on the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.perf.certify import synthesise_dataset
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


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[Any]:
    """One scripted OpenAI-compatible server on 127.0.0.1 for the session (tests/toolgrad/scripted_server.py)."""
    from scripted_openai import scripted

    with scripted.ScriptedOpenAI() as server:
        yield server


@pytest.fixture
def scripted_openai(scripted_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The shared scripted server, reset (empty script, no requests) for this test; the key the
    openai client insists on is set."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    scripted_server.reset()
    return scripted_server

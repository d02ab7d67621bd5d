"""Your own API is first-class: a dataset generated from an environment folder records where the
folder is (relative to the dataset), so `toolgrad certify` finds it again with no flag, from any
working directory; when it cannot, it says which `--env NAME=PATH` to pass."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson

from simulator.environments.environment import shipped_root
from toolgrad.dataset.runner import generate_dataset
from toolgrad.settings import GenerateSettings

ROOT = Path(__file__).resolve().parents[2]


def certify(data: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLGRAD_")} | {"COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "benchmarks.cli.app", "certify", str(data), *extra], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_custom_environment_certifies_with_no_flags_from_anywhere(tmp_path: Path) -> None:
    api = tmp_path / "my-api"
    api.mkdir()
    shutil.copy(shipped_root() / "petstore" / "openapi.yaml", api / "openapi.yaml")
    data = tmp_path / "out" / "data.jsonl"
    data.parent.mkdir()
    generate_dataset(GenerateSettings.model_validate({"envs": [str(api)], "n": 3, "output": str(data)}))
    first = orjson.loads(data.read_bytes().splitlines()[0])
    assert first["provenance"]["environment_paths"] == {"my-api": "../my-api"}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = certify(data, elsewhere)
    assert result.returncode == 0, result.stdout + result.stderr

    # moved away from its dataset: certify names the flag that finds it
    moved = tmp_path / "moved" / "my-api"  # the folder's name is the environment's name
    moved.parent.mkdir()
    api.rename(moved)
    result = certify(data, elsewhere)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "none named 'my-api' here: pass --env my-api=PATH" in result.stdout, result.stdout
    assert certify(data, elsewhere, "--env", f"my-api={moved}").returncode == 0
    # the folder alone: named by its folder (loaded only for its name, in the command)
    assert certify(data, elsewhere, "--env", str(moved)).returncode == 0


def test_shipped_environments_record_no_path(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    generate_dataset(GenerateSettings.model_validate({"envs": ["petstore"], "n": 1, "output": str(data)}))
    assert "environment_paths" not in orjson.loads(data.read_bytes().splitlines()[0])["provenance"]

"""Your own environment in a container: a folder and a bare spec file of the host, mounted read-only by
`toolgrad sim compose` and by the docker backend, serve what the in-process simulator serves."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from docker.client import from_env
from sim_scenario import observe, wait_healthy
from typer.testing import CliRunner

from simulator.cli.sandbox import sandbox_app
from simulator.environments.environment import load_environment, shipped_root
from simulator.messages import SimRequest
from simulator.sandboxes.backends import running_services
from simulator.sandboxes.backends.base import default_image_tag, free_port, port_is_free
from simulator.sandboxes.http import HTTPSandbox
from simulator.sandboxes.inprocess import InProcessSandbox
from tests.support.docker_tier import IMAGE, compose_commands
from toolgrad.dataset.runner import generate_dataset
from toolgrad.settings import GenerateSettings

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

COMPOSE = compose_commands()
ADMIN_TOKEN = secrets.token_urlsafe(16)
BOARD = SimRequest("GET", "/board")


def _custom_envs(root: Path) -> tuple[Path, Path]:
    """A folder (a copy of museum, named after the folder) and a bare spec (tictactoe's, titled "Tic Tac Toe")."""
    folder = root / "my-museum"
    shutil.copytree(shipped_root() / "museum", folder)
    env_yaml = folder / "env.yaml"
    env_yaml.write_text("".join(line for line in env_yaml.read_text().splitlines(True) if not line.startswith("name:")))
    spec = root / "specs" / "tictactoe.yaml"
    spec.parent.mkdir()
    shutil.copy(shipped_root() / "tictactoe" / "openapi.yaml", spec)
    return folder, spec


def _check_served(services: list[tuple[str, Path, str]]) -> None:
    """Each (url, host path, admin token) answers as the in-process simulator does, under the name
    the host gives the environment."""
    for url, path, token in services:
        environment = load_environment(path, seed=0)
        remote = HTTPSandbox(url, environment.name, admin_token=token)
        local = InProcessSandbox(environment)
        try:
            assert remote.fingerprint() == local.fingerprint(), "same name, spec and settings inside"
            assert remote.fingerprint()["env"] == environment.name
            if path.is_dir():
                assert environment.name == "my-museum"
                assert observe(remote, "museum", "custom") == observe(local, "museum", "custom")
            else:
                assert environment.name == "tic-tac-toe"
                assert httpx.get(url + "/board", timeout=10).status_code == 200
                assert remote.request(BOARD).body == local.request(BOARD).body
        finally:
            remote.close()
            local.close()


@pytest.fixture(params=sorted(COMPOSE) or ["none"])
def compose(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "none":
        pytest.skip("neither `docker compose` (v2) nor `docker-compose` (v1) is installed")
    return COMPOSE[request.param]


def _port_base() -> int:
    for _ in range(50):
        base = free_port()
        if base + 2 < 65535 and port_is_free(base + 1):
            return base
    raise AssertionError("no two free ports in a row found")


@pytest.fixture
def stack(compose: list[str], tmp_path: Path) -> Iterator[tuple[list[str], int, Path, Path]]:
    folder, spec = _custom_envs(tmp_path)
    out = tmp_path / "stack" / "docker-compose.yml"
    base = _port_base()
    written = CliRunner().invoke(sandbox_app, ["compose", str(folder), str(spec), "-o", str(out), "--port-base",
                                               str(base), "--no-build", "--no-pin", "--image", IMAGE])
    assert written.exit_code == 0, written.output
    assert "- ../my-museum:/opt/toolgrad/custom/my-museum:ro" in out.read_text()
    command = [*compose, "-f", str(out), "-p", f"toolgrad-test-{secrets.token_hex(3)}"]
    try:
        up = subprocess.run([*command, "up", "-d"], capture_output=True, text=True, timeout=300, check=False,
                            env={**os.environ, "TOOLGRAD_SIM_ADMIN_TOKEN": ADMIN_TOKEN})
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
        yield command, base, folder, spec
    finally:
        subprocess.run([*command, "down", "-v", "--remove-orphans", "-t", "3"], capture_output=True, timeout=300,
                       check=False)


def test_compose_serves_a_mounted_folder_and_spec(stack: tuple[list[str], int, Path, Path]) -> None:
    command, base, folder, spec = stack
    folder_url, spec_url = f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"
    for url in (folder_url, spec_url):
        wait_healthy(url)
    _check_served([(folder_url, folder, ADMIN_TOKEN), (spec_url, spec, ADMIN_TOKEN)])
    ids = subprocess.run([*command, "ps", "-q"], capture_output=True, text=True, timeout=60, check=True).stdout.split()
    client = from_env()
    try:
        for ident in ids:
            mounts = client.containers.get(ident).attrs["Mounts"]
            assert [(m["Destination"].rsplit("/", 1)[-1], m["RW"]) for m in mounts] in (
                [("my-museum", False)], [("specs", False)]), mounts
    finally:
        client.close()


def test_the_docker_backend_serves_a_mounted_folder_and_spec(tmp_path: Path) -> None:
    folder, spec = _custom_envs(tmp_path)
    with running_services([str(folder), str(spec)], backend="docker", seed=0, image=IMAGE) as handles:
        assert [h.name for h in handles] == ["my-museum", "tictactoe"]
        _check_served([(h.base_url, path, h.admin_token) for h, path in zip(handles, (folder, spec), strict=True)])


def test_a_dataset_of_a_folder_certifies_against_containers(tmp_path: Path) -> None:
    """certify --backend docker replays a dataset made on the host from a folder in a container
    that mounts the folder (the dataset records the folder relative to itself)."""
    if default_image_tag() != IMAGE:
        pytest.skip(f"certify --backend docker runs {default_image_tag()}, not {IMAGE}")
    folder, _ = _custom_envs(tmp_path)
    data = tmp_path / "out" / "data.jsonl"
    data.parent.mkdir()
    generate_dataset(GenerateSettings.model_validate({"envs": [str(folder)], "n": 2, "output": str(data)}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLGRAD_")}
    result = subprocess.run([sys.executable, "-m", "benchmarks.cli.app", "certify", str(data), "--backend", "docker"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2/2 samples certified (100.0%)" in result.stderr + result.stdout

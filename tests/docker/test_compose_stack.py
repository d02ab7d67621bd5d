"""`toolgrad sim compose` + `docker compose up`: two shipped envs behave exactly like in-process.

Runs with every compose implementation present (v2 `docker compose`, v1 `docker-compose`).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker.client import from_env
from sim_scenario import ENVS, observe, reference, wait_healthy
from typer.testing import CliRunner

from simulator.cli.sandbox import sandbox_app
from simulator.sandboxes.backends.base import free_port, port_is_free
from simulator.sandboxes.http import HTTPSandbox
from tests.support.docker_tier import IMAGE, compose_commands

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

COMPOSE = compose_commands()
ADMIN_TOKEN = secrets.token_urlsafe(16)  # the services bind 0.0.0.0 inside: their control API is closed


@dataclass
class Stack:
    compose: list[str]  # the command prefix, with -f and -p
    urls: dict[str, str]
    project: str
    file: Path

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.compose, *args], capture_output=True, text=True, timeout=timeout, check=False,
            env={**os.environ, "TOOLGRAD_SIM_ADMIN_TOKEN": ADMIN_TOKEN},
        )
        assert result.returncode == 0, (
            f"{' '.join([*self.compose, *args])}:\n{result.stdout}\n{result.stderr}"
        )
        return result

    def containers(self) -> list[Any]:
        client = from_env()
        return client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={self.project}"}
        )


def _port_base(count: int) -> int:
    """A base port with ``count`` free consecutive ports after it."""
    for _ in range(50):
        base = free_port()
        if base + count < 65535 and all(port_is_free(base + i) for i in range(count)):
            return base
    raise AssertionError("no run of free ports found")


@pytest.fixture(scope="module", params=sorted(COMPOSE) or ["none"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if request.param == "none":
        pytest.skip("neither `docker compose` (v2) nor `docker-compose` (v1) is installed")
    directory = tmp_path_factory.mktemp(f"compose-{request.param}")
    file = directory / "docker-compose.yml"
    base = _port_base(len(ENVS))
    written = CliRunner().invoke(
        sandbox_app,
        ["compose", *ENVS, "-o", str(file), "--port-base", str(base), "--seed", "0", "--image", IMAGE],
    )
    assert written.exit_code == 0, written.output
    project = f"toolgrad-test-{secrets.token_hex(3)}"
    stack = Stack([*COMPOSE[request.param], "-f", str(file), "-p", project],
                  {env: f"http://127.0.0.1:{base + i}" for i, env in enumerate(ENVS)}, project, file)  # fmt: skip
    # The finalizer is registered before `up`, so a failing `up` still tears everything down.
    try:
        stack.run("up", "-d")
        for url in stack.urls.values():
            wait_healthy(url)
        yield stack
    finally:
        subprocess.run([*stack.compose, "down", "-v", "--remove-orphans", "-t", "3"],
                       capture_output=True, timeout=300, check=False)  # fmt: skip
        for container in stack.containers():  # whatever `down` missed
            container.remove(force=True, v=True)
    assert stack.containers() == []


def test_compose_file_is_deterministic(stack: Stack, tmp_path: Path) -> None:
    again = tmp_path / "docker-compose.yml"
    base = int(stack.urls[ENVS[0]].rsplit(":", 1)[1])
    result = CliRunner().invoke(
        sandbox_app,
        ["compose", *ENVS, "-o", str(again), "--port-base", str(base), "--seed", "0", "--image", IMAGE],
    )
    assert result.exit_code == 0, result.output
    assert again.read_bytes() == stack.file.read_bytes()


def test_containers_are_locked_down(stack: Stack) -> None:
    containers = stack.containers()
    assert len(containers) == len(ENVS)
    for container in containers:
        host_config = container.attrs["HostConfig"]
        assert host_config["ReadonlyRootfs"] is True
        bindings = host_config["PortBindings"]["8000/tcp"]
        assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
        assert container.attrs["Config"]["User"] == "10001:10001"
        assert container.labels["toolgrad.sim"] == "1"
        assert host_config["CapDrop"] == ["ALL"] and host_config["SecurityOpt"] == ["no-new-privileges:true"]
        assert host_config["Memory"] == 1024**3 and host_config["PidsLimit"] == 256
        assert host_config["NanoCpus"] == 10**9 and "size=64m" in host_config["Tmpfs"]["/tmp"]


@pytest.mark.parametrize("env", ENVS)
def test_service_matches_in_process(stack: Stack, env: str) -> None:
    assert httpx.get(stack.urls[env] + "/_sim/state", timeout=10).status_code == 401, "no token: refused"
    sandbox = HTTPSandbox(stack.urls[env], env, admin_token=ADMIN_TOKEN)
    try:
        assert sandbox.fingerprint()["seed"] == 0
        remote = observe(sandbox, env, session="compose-match")
    finally:
        sandbox.close()
    local = reference(env, session="compose-match")
    assert remote.fresh_hash == local.fresh_hash
    assert remote.transcript == local.transcript
    assert remote.final_hash == local.final_hash
    assert remote.journal == local.journal


def test_restart_is_deterministic(stack: Stack) -> None:
    env = ENVS[0]
    before = HTTPSandbox(stack.urls[env], env, admin_token=ADMIN_TOKEN)
    try:
        first = observe(before, env, session="restart")
    finally:
        before.close()

    stack.run("restart", "-t", "3", env)
    wait_healthy(stack.urls[env])

    after = HTTPSandbox(stack.urls[env], env, admin_token=ADMIN_TOKEN)
    try:
        assert after.state_hash("restart") == first.fresh_hash  # a restarted server starts fresh
        second = observe(after, env, session="restart")
        after.reset("restart")
        assert after.state_hash("restart") == first.fresh_hash  # reset equals fresh
    finally:
        after.close()
    assert second == first

"""The sandbox contract (tests/support/sandbox_contract.py), run by a simulator container."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker.client import from_env
from sim_scenario import wait_healthy

from simulator.sandboxes.backends import running_services
from simulator.sandboxes.backends.base import CONTAINER_PORT, LABEL, free_port
from simulator.sandboxes.http import ADMIN_TOKEN_ENV, HTTPSandbox
from tests.support.docker_tier import IMAGE
from tests.support.sandbox_contract import BOUNDED_SESSIONS, ENV, SEED, SandboxContract


@pytest.mark.docker
@pytest.mark.timeout(300)
class TestDockerContainer(SandboxContract):
    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls, service_state_dir: Path) -> Iterator[HTTPSandbox]:
        with running_services([ENV], backend="docker", seed=SEED, image=IMAGE) as [handle]:
            box = HTTPSandbox(handle.base_url, handle.name, admin_token=handle.admin_token or None)
            yield box
            box.close()

    @pytest.fixture(scope="class")
    @classmethod
    def bounded_sandbox(cls) -> Iterator[HTTPSandbox]:
        # the docker backend takes no server flags: the image's entrypoint appends the command to
        # `toolgrad sim serve`, so the container is started here with --max-sessions
        client = from_env()
        token = secrets.token_urlsafe(32)
        port = free_port()
        container = client.containers.run(
            IMAGE, command=["--max-sessions", str(BOUNDED_SESSIONS)], detach=True, read_only=True,
            tmpfs={"/tmp": "rw,size=64m"}, labels={LABEL: "1"},
            environment={"TOOLGRAD_ENV": ENV, "TOOLGRAD_SEED": str(SEED), ADMIN_TOKEN_ENV: token},
            ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", port)},
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_healthy(base_url)
            box = HTTPSandbox(base_url, ENV, admin_token=token)
            yield box
            box.close()
        finally:
            container.remove(force=True, v=True)
            client.close()

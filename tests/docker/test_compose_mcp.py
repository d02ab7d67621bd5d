"""`toolgrad sim compose --mcp` + `docker compose up`: each environment also answers MCP (streamable
HTTP) from the image, to the MCP SDK's own client, the same bytes as in process."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from sim_scenario import wait_healthy
from typer.testing import CliRunner

from simulator.cli.sandbox import sandbox_app
from simulator.environments.environment import load_environment
from simulator.sandboxes.backends.base import free_port, port_is_free
from simulator.serving.mcp import SandboxTools
from tests.support.docker_tier import IMAGE, compose_commands

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

ENV = "petstore"
NEW_PET = {"name": "Rex", "photoUrls": [], "status": "available"}


@pytest.fixture(scope="module")
def mcp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    compose = compose_commands()
    if not compose:
        pytest.skip("neither `docker compose` (v2) nor `docker-compose` (v1) is installed")
    command = next(iter(compose.values()))
    file = tmp_path_factory.mktemp("compose-mcp") / "docker-compose.yml"
    base = free_port()
    while not (port_is_free(base) and port_is_free(base + 1)):
        base = free_port()
    written = CliRunner().invoke(sandbox_app, ["compose", ENV, "--mcp", "--mcp-port-base", str(base + 1), "-o",
                                               str(file), "--port-base", str(base), "--image", IMAGE])
    assert written.exit_code == 0, written.output
    stack = [*command, "-f", str(file), "-p", f"toolgrad-mcp-{secrets.token_hex(3)}"]
    try:
        up = subprocess.run([*stack, "up", "-d"], capture_output=True, text=True, timeout=300, check=False)
        assert up.returncode == 0, up.stdout + up.stderr
        wait_healthy(f"http://127.0.0.1:{base + 1}")
        yield f"http://127.0.0.1:{base + 1}/mcp"
    finally:
        subprocess.run([*stack, "down", "-v", "--remove-orphans", "-t", "3"], capture_output=True, timeout=300,
                       check=False)  # fmt: skip


@asynccontextmanager
async def session(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        yield client


def in_process(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    return SandboxTools([load_environment(ENV, seed=0)]).call("local", name, arguments)


def test_the_mcp_service_serves_the_environment_per_session(mcp_url: str) -> None:
    async def main() -> tuple[list[str], types.CallToolResult, types.CallToolResult, types.CallToolResult]:
        async with session(mcp_url) as a, session(mcp_url) as b:
            names = [t.name for t in (await a.list_tools()).tools]
            created = await a.call_tool("addPet", NEW_PET)
            assert isinstance(created, types.CallToolResult) and created.structured_content is not None
            pet_id = created.structured_content["body"]["id"]
            read = await a.call_tool("getPetById", {"petId": pet_id})
            elsewhere = await b.call_tool("getPetById", {"petId": pet_id})
            assert isinstance(read, types.CallToolResult) and isinstance(elsewhere, types.CallToolResult)
            return names, created, read, elsewhere

    names, created, read, elsewhere = anyio.run(main)
    assert names == [t.name for t in SandboxTools([load_environment(ENV)]).listing]
    assert created.structured_content == in_process("addPet", NEW_PET).structured_content
    assert read.structured_content == {"status": 200, "body": created.structured_content["body"]}
    assert elsewhere.is_error and elsewhere.structured_content is not None
    assert elsewhere.structured_content["status"] == 404  # the other session never saw the write


"""`toolgrad sim mcp`: environments as an MCP server, driven by the MCP SDK's own client over stdio
(a `toolgrad sim mcp` child process) and over streamable HTTP (a real server on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from typer.testing import CliRunner

from simulator.cli import mcp as cli_mcp
from simulator.cli.app import sim_app
from simulator.environments.environment import load_environment
from simulator.errors import SimulatorError
from simulator.serving.mcp import SandboxTools, build_server
from simulator.tools import qualified_tools, tools_for

TOOLGRAD = Path(sys.executable).with_name("toolgrad")
ENVS = ("petstore", "crm")
CRM = {"x-apideck-consumer-id": "consumer-1", "x-apideck-app-id": "app-1"}  # headers every crm call needs
NEW_PET = {"name": "Rex", "photoUrls": ["https://example.com/rex.jpg"], "status": "available"}
Transcript = list[tuple[bool, str, Any]]  # per call: isError, the text content, the structured content


async def call(session: ClientSession | Client, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    result = await session.call_tool(name, arguments)
    assert isinstance(result, types.CallToolResult)
    return result


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def run_script(session: ClientSession | Client) -> Transcript:
    """Create then read in each environment, write to a seeded record, then two bad calls; checks
    each answer and returns the transcript."""
    transcript: Transcript = []

    async def step(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        result = await call(session, name, arguments)
        transcript.append((bool(result.is_error), text(result), result.structured_content))
        return result

    created = await step("petstore__addPet", NEW_PET)
    assert not created.is_error and created.structured_content is not None
    assert created.structured_content["status"] == 200
    pet = created.structured_content["body"]
    read = await step("petstore__getPetById", {"petId": pet["id"]})
    assert read.structured_content == {"status": 200, "body": pet}
    assert pet["name"] == "Rex"

    lead = await step("crm__leadsAdd", {**CRM, "name": "Ada Lovelace", "company_name": "Analytical"})
    assert lead.structured_content is not None and lead.structured_content["status"] == 201
    lead_id = lead.structured_content["body"]["data"]["id"]
    got = await step("crm__leadsOne", {**CRM, "id": lead_id})
    assert got.structured_content is not None and got.structured_content["status"] == 200
    assert got.structured_content["body"]["data"]["name"] == "Ada Lovelace"

    renamed = await step("petstore__updatePet", {"id": 1, "name": "Renamed", "photoUrls": []})
    assert renamed.structured_content == {"status": 200, "body": renamed.structured_content["body"]}

    # bad input: `name` must be a string, `photoUrls` an array -> a tool error naming both fields
    bad = await step("petstore__addPet", {"name": 123, "photoUrls": "x"})
    assert bad.is_error
    assert '"pointer":"/name"' in text(bad) and '"pointer":"/photoUrls"' in text(bad)
    assert bad.structured_content is not None and bad.structured_content["status"] == 422
    # a call that cannot be addressed (no path argument) is a tool error too, not a protocol error
    unaddressed = await step("crm__leadsOne", CRM)
    assert unaddressed.is_error and "missing path argument 'id'" in text(unaddressed)
    return transcript


def reference_transcript() -> Transcript:
    """The same script in process, without MCP: what every transport must answer, byte for byte."""
    tools = SandboxTools([load_environment(env) for env in ENVS])

    async def main() -> Transcript:
        async with Client(build_server(tools), mode="legacy") as client:
            return await run_script(client)

    return anyio.run(main)


async def check_isolated_and_repeatable(a: ClientSession, b: ClientSession) -> Transcript:
    """Two sessions of one server: the same calls give the same bytes; writes stay in their session."""
    listing = await a.list_tools()
    names = [t.name for t in listing.tools]
    assert names == list(qualified_tools({env: load_environment(env).spec for env in ENVS}))
    first = await run_script(a)
    second = await run_script(b)
    assert second == first
    deleted = await call(a, "petstore__deletePet", {"petId": 2})
    assert not deleted.is_error
    assert (await call(a, "petstore__getPetById", {"petId": 2})).is_error  # gone in a ...
    kept = await call(b, "petstore__getPetById", {"petId": 2})  # ... and still there in b
    assert not kept.is_error and kept.structured_content is not None
    assert kept.structured_content["body"]["id"] == 2
    return first


@asynccontextmanager
async def stdio_session(*args: str) -> AsyncIterator[ClientSession]:
    """A `toolgrad sim mcp ARGS` child process and an initialized SDK client session on its stdio."""
    params = StdioServerParameters(command=str(TOOLGRAD), args=["sim", "mcp", *args],
                                   env={**os.environ, "PYTHONHASHSEED": "0"})
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@pytest.fixture(scope="module")
def mcp_http(server_factory: Callable[..., Any]) -> Iterator[Any]:
    """`toolgrad sim mcp petstore crm --transport http` on a free loopback port (a conftest ServedEnv)."""
    served = server_factory(" ".join(ENVS), command=("sim", "mcp"), extra=("--transport", "http"))
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def expected() -> Transcript:
    return reference_transcript()


def test_stdio_sessions_are_isolated_repeatable_and_match_in_process(expected: Transcript) -> None:
    async def main() -> Transcript:
        async with stdio_session(*ENVS) as a, stdio_session(*ENVS) as b:
            return await check_isolated_and_repeatable(a, b)

    assert anyio.run(main) == expected


def test_http_sessions_are_isolated_repeatable_and_match_in_process(mcp_http: Any,
                                                                   expected: Transcript) -> None:
    url = f"{mcp_http.origin}/mcp"

    async def main() -> Transcript:
        async with http_session(url) as a, http_session(url) as b:
            return await check_isolated_and_repeatable(a, b)

    assert anyio.run(main) == expected


def sessions_open(served: Any) -> int:
    return int(httpx.get(f"{served.origin}/_sim/health", timeout=5).json()["sessions"])


def test_http_session_state_is_freed_when_the_client_ends_it(mcp_http: Any) -> None:
    before = sessions_open(mcp_http)

    async def main() -> None:
        async with http_session(f"{mcp_http.origin}/mcp") as session:
            await call(session, "petstore__addPet", NEW_PET)
            assert sessions_open(mcp_http) == before + 1

    anyio.run(main)
    assert sessions_open(mcp_http) == before  # the client's DELETE dropped the simulator session


def test_http_speaks_the_handshake_protocol_to_every_client(mcp_http: Any) -> None:
    """The SDK's default client probes the stateless 2026 protocol and falls back to the
    handshake; a client pinned to 2026 (no session) gets a tool error saying what to do."""
    url = f"{mcp_http.origin}/mcp"

    async def main() -> tuple[types.CallToolResult, types.CallToolResult]:
        async with Client(url) as auto:
            answered = await call(auto, "petstore__getPetById", {"petId": 1})
        async with Client(url, mode="2026-07-28") as pinned:
            refused = await call(pinned, "petstore__getPetById", {"petId": 1})
        return answered, refused

    answered, refused = anyio.run(main)
    assert not answered.is_error and answered.structured_content is not None
    assert answered.structured_content["body"]["id"] == 1
    assert refused.is_error and "initialize handshake" in text(refused)


def test_http_rejects_a_foreign_host_header(mcp_http: Any) -> None:
    """DNS-rebinding protection: a page on another origin cannot drive the sandbox."""
    response = httpx.post(f"{mcp_http.origin}/mcp", headers={"host": "evil.example:80"}, json={}, timeout=5)
    assert response.status_code == 421


# --- in process: names, schemas, control tools ------------------------------------------------------


def test_one_environment_keeps_the_sim_tools_names_and_several_are_qualified() -> None:
    petstore = load_environment("petstore")
    single = SandboxTools([petstore])
    assert [t.name for t in single.listing] == [t.name for t in tools_for(petstore.spec)]
    for listed, tool in zip(single.listing, tools_for(petstore.spec), strict=True):
        assert listed.description == tool.description
        assert listed.input_schema == tool.parameters
    qualified = SandboxTools([petstore], qualify=True)
    assert [t.name for t in qualified.listing] == [f"petstore__{t.name}" for t in tools_for(petstore.spec)]
    get = next(t for t in single.listing if t.name == "getPetById")
    post = next(t for t in single.listing if t.name == "addPet")
    assert get.annotations is not None and get.annotations.read_only_hint is True
    assert post.annotations is not None and post.annotations.read_only_hint is False


def test_environments_must_be_named_once() -> None:
    with pytest.raises(SimulatorError, match="no environment given"):
        SandboxTools([])
    with pytest.raises(SimulatorError, match="named twice"):
        SandboxTools([load_environment("petstore"), load_environment("petstore")])


def test_control_tools_reset_snapshot_restore_and_hash_the_callers_session() -> None:
    plain = SandboxTools([load_environment("petstore")])
    assert not any(t.name.startswith("sim__") for t in plain.listing)
    assert plain.call("s", "sim__reset", {}).is_error  # not offered without --control
    tools = SandboxTools([load_environment("petstore")], control=True)

    async def main() -> list[Any]:
        async with Client(build_server(tools), mode="legacy") as client:
            fresh = (await call(client, "sim__state_hash", {})).structured_content
            snap = (await call(client, "sim__snapshot", {})).structured_content
            await call(client, "addPet", NEW_PET)
            written = (await call(client, "sim__state_hash", {})).structured_content
            restored = (await call(client, "sim__restore", snap or {})).structured_content
            await call(client, "addPet", NEW_PET)
            reset = (await call(client, "sim__reset", {})).structured_content
            wrong = await call(client, "sim__restore", {"snapshot": {"petstore": "nope"}})
            return [fresh, snap, written, restored, reset, wrong]

    fresh, snap, written, restored, reset, wrong = anyio.run(main)
    assert fresh == {"petstore": {"hash": snap["snapshot"]["petstore"], "writes": 0}}
    assert written["petstore"]["writes"] == 1 and written["petstore"]["hash"] != fresh["petstore"]["hash"]
    assert restored == fresh and reset == fresh
    assert wrong.is_error and "no snapshot 'nope' of petstore" in text(wrong)


def test_mcp_sessions_are_bounded_by_the_environments_limits() -> None:
    """An MCP server left running holds at most ``limits.max_sessions`` sessions, like `sim serve`;
    a call in an evicted session is a tool error that says so, never a fresh state."""
    environment = dataclasses.replace(load_environment("petstore"), limits={"max_sessions": 2})
    tools = SandboxTools([environment], control=True)
    for session in ("a", "b", "c"):  # the third evicts the least recently used, "a"
        assert not tools.call(session, "addPet", NEW_PET).is_error
    assert tools.session_count() == 2
    for name, arguments in (("addPet", NEW_PET), ("sim__state_hash", {})):
        gone = tools.call("a", name, arguments)
        assert gone.is_error and "evicted" in text(gone), f"{name} in an evicted session"
    assert not tools.call("a", "sim__reset", {}).is_error, "a reset starts the evicted session afresh"


# --- the CLI -----------------------------------------------------------------------------------------


def test_cli_without_the_sdk_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_mcp.importlib.util, "find_spec", lambda name: None)  # as if `mcp` were absent
    result = CliRunner().invoke(sim_app, ["mcp", "petstore"])
    assert result.exit_code == 2
    assert result.output == ("error: `toolgrad sim mcp` needs the MCP SDK, which is not installed: "
                             "pip install -e '.[mcp]' in the toolgrad-kit checkout (or: bash scripts/setup.sh mcp)\n")


@pytest.mark.parametrize(("args", "message"), [
    (["mcp", "petstore", "--transport", "sse"], "--transport must be one of stdio, http, got 'sse'"),
    (["mcp", "no-such-env"], "neither a file, a directory nor a shipped environment"),
])  # fmt: skip
def test_cli_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(sim_app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output

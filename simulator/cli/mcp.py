"""``toolgrad sim mcp``: serve environments as an MCP server (the CLI shell; prints to stderr only,
since over stdio stdout is the protocol)."""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer

from simulator.errors import SimulatorError, install_hint

from .shell import console, escape, fail, help_text, user_errors

mcp_app = typer.Typer()

INSTALL_HINT = install_hint("mcp")
TRANSPORTS = ("stdio", "http")


def mcp_missing() -> str | None:
    """Why the MCP server cannot run here (the ``mcp`` SDK is not installed), or None."""
    if importlib.util.find_spec("mcp") is None:
        return f"`toolgrad sim mcp` needs the MCP SDK, which is not installed: {INSTALL_HINT}"
    return None


@mcp_app.command("mcp")
def mcp_command(
    envs: Annotated[list[str], typer.Argument(help="Spec files, environment directories or shipped names.")],
    transport: Annotated[str, typer.Option(help="stdio (a desktop client starts this command) or http "
                                                "(streamable HTTP at /mcp).")] = "stdio",
    host: Annotated[str, typer.Option(envvar="TOOLGRAD_SIM_HOST", help="--transport http only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TOOLGRAD_SIM_PORT", help="--transport http only.")] = 8000,
    seed: Annotated[int | None, typer.Option(envvar="TOOLGRAD_SEED", help="Overrides each env's seed.")] = None,
    control: Annotated[bool, typer.Option("--control", help="Also offer reset, snapshot, restore and state "
                                                             "hash as tools (sim__*).")] = False,
    qualify: Annotated[bool | None, typer.Option(
        "--qualify/--no-qualify",
        help=help_text("Name tools <env>__<operation> as datasets do", default="only when serving several envs"))] = None,
) -> None:
    """Serve environments as an MCP server: one tool per operation, one sandbox session per MCP session."""
    if transport not in TRANSPORTS:
        fail(f"--transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    missing = mcp_missing()
    if missing is not None:
        fail(missing)
    from simulator.environments.environment import load_environment
    from simulator.serving.mcp import SandboxTools, serve_http, serve_stdio

    with user_errors(SimulatorError):
        environments = [load_environment(env, seed=seed) for env in envs]
        tools = SandboxTools(environments, control=control, qualify=qualify)
    names = escape(", ".join(f"{e.name} (seed {e.seed})" for e in environments))
    if transport == "stdio":
        console.print(f"MCP over stdio: {names}, {len(tools.listing)} tools", highlight=False, soft_wrap=True)
        serve_stdio(tools)
        return
    console.print(f"MCP over streamable HTTP at http://{host}:{port}/mcp: {names}, {len(tools.listing)} tools",
                  highlight=False, soft_wrap=True)
    serve_http(tools, host=host, port=port)

"""Environments as an MCP server: every operation an MCP tool, every MCP session a sandbox session.

Built on the official ``mcp`` SDK's low-level :class:`mcp.server.Server` (the tools are data
from the spec, not Python functions), served over stdio or streamable HTTP by the SDK's own
transports. What a caller may rely on:

- Tools are the ones ``toolgrad sim tools`` prints (same descriptions and input schemas). With
  one environment they keep its names (``addPet``); with several, or ``qualify=True``, they take
  the qualified names datasets use (``petstore__addPet``).
- A call's result is the simulator's response: ``structuredContent`` ``{"status", "body"}`` and
  the same JSON as text (the bytes a dataset's tool message holds). A 4xx/5xx response, or a
  call that cannot be made (a missing path argument), is a tool error (``isError``) whose text
  names what was wrong: the model sees it and may try again; the server never fails the request.
- Each MCP session is its own simulator session: over stdio the one client of the process; over
  streamable HTTP the ``Mcp-Session-Id`` the SDK assigns. So two agents never see each other's
  writes, and the same calls in the same session give the same bytes.
- The HTTP server keeps per-session state, so it speaks the handshake protocol versions only
  (its ``server/discover`` says so; the SDK's client then falls back to ``initialize``).
- With ``control=True`` four more tools reset, snapshot, restore and hash the session's state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from simulator import __version__
from simulator.environments.environment import Environment
from simulator.errors import SimulatorError
from simulator.sandboxes.backends.base import HEALTH_PATH
from simulator.service.simulator import Simulator
from simulator.state.sessions import Limits
from simulator.tools import (
    Tool,
    ToolCallError,
    build_request,
    error_text,
    qualified_tools,
    response_body,
    result_text,
    tools_for,
)

from .mcp_control import CONTROL_PREFIX, ControlTools

SERVER_NAME = "toolgrad-sim"
MCP_PATH = "/mcp"
STDIO_SESSION = "mcp-stdio"  # a stdio server has exactly one client: its parent process
SESSION_HEADER = "mcp-session-id"
RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "integer", "description": "The HTTP status the service answered with."},
        "body": {"description": "The response body: JSON, or text for other media types; null when empty."},
    },
    "required": ["status", "body"],
}
_NO_SESSION = (
    "this server keeps state per MCP session, and this request belongs to none: connect with the "
    "initialize handshake (protocol 2025-11-25 or earlier), e.g. mcp.Client(url, mode='legacy')"
)


class SandboxTools:
    """The MCP tools for some environments and what a call does: pure, no I/O, no SDK session.

    One :class:`Simulator` per environment; calls run in named sessions (made on first use,
    evicted least recently used beyond the environment's ``limits:``, after which a call in
    one is a tool error saying so, as HTTP answers 410).
    Not thread-safe, like the simulator: one call at a time (the MCP server calls it from one
    event loop without awaiting in between).
    """

    def __init__(self, environments: Sequence[Environment], *, control: bool = False,
                 qualify: bool | None = None) -> None:
        names = [env.name for env in environments]
        if not names:
            raise SimulatorError("no environment given: name at least one (e.g. petstore)")
        if len(set(names)) != len(names):
            raise SimulatorError(f"an environment is named twice in {names}: name each once")
        # bounded like `sim serve`: the env's `limits:` (sessions and snapshots evicted beyond them)
        self.simulators = {env.name: Simulator(env, limits=Limits().with_values(**env.limits)) for env in environments}
        qualify = len(environments) > 1 if qualify is None else qualify
        if qualify:
            self.bound = qualified_tools({env.name: env.spec for env in environments})
        else:
            only = environments[0].name
            self.bound = {tool.name: (only, tool) for tool in tools_for(environments[0].spec)}
        self.control = ControlTools(self.simulators, taken=set(self.bound)) if control else None
        self.listing = [_mcp_tool(name, tool) for name, (_, tool) in self.bound.items()]
        if self.control is not None:
            self.listing.extend(self.control.listing())
        self._schemas = {t.name: t.input_schema for t in self.listing}

    def input_schema(self, name: str) -> dict[str, Any] | None:
        return self._schemas.get(name)

    def call(self, session: str, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        """Make the call in ``session``. Never raises for a bad call: the result says what went wrong."""
        arguments = {} if arguments is None else arguments
        if self.control is not None and name.startswith(CONTROL_PREFIX) and self.control.owns(name):
            return self.control.call(session, name, arguments)
        bound = self.bound.get(name)
        if bound is None:
            return error_result(f"unknown tool {name!r}; tools/list names every tool")
        env_name, tool = bound
        simulator = self.simulators[env_name]
        try:
            request = build_request(tool, arguments, simulator.env.spec.base_path)
        except ToolCallError as exc:
            return error_result(str(exc))
        response = simulator.handle(request, session)
        body = response_body(response)
        return types.CallToolResult(
            content=[types.TextContent(text=result_text(response.status, body))],
            structured_content={"status": response.status, "body": body},
            is_error=response.status >= 400,
        )

    def session_count(self) -> int:
        """How many sessions hold state (made a call) and have not been dropped."""
        return len({name for simulator in self.simulators.values() for name in simulator.registry.names()})

    def drop(self, session: str) -> None:
        """Forget a session in every environment (its MCP session ended)."""
        for simulator in self.simulators.values():
            simulator.drop(session)


def error_result(message: str) -> types.CallToolResult:
    """A tool error for a call that could not be made (``{"error": ...}``, as datasets show it)."""
    return types.CallToolResult(content=[types.TextContent(text=error_text(message))], is_error=True)


def _mcp_tool(name: str, tool: Tool) -> types.Tool:
    method = tool.method.upper()
    # hints only (MCP clients use them to decide what to confirm): the sandbox is a closed world
    annotations = types.ToolAnnotations(
        read_only_hint=method in ("GET", "HEAD"), destructive_hint=method == "DELETE",
        idempotent_hint=method in ("GET", "HEAD", "PUT", "DELETE"), open_world_hint=False,
    )  # fmt: skip
    return types.Tool(name=name, description=tool.description, input_schema=tool.parameters,
                      output_schema=RESULT_SCHEMA, annotations=annotations)


# --- the SDK server ------------------------------------------------------------------------------


def session_for(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """The simulator session of a request: the HTTP transport's session id, or the one stdio
    client; None for an HTTP request outside any MCP session (the stateless 2026 protocol)."""
    request = ctx.request
    if isinstance(request, Request):
        session_id = request.headers.get(SESSION_HEADER)
        return f"mcp-{session_id}" if session_id else None
    return STDIO_SESSION


def build_server(tools: SandboxTools, *, http: bool = False, instructions: str | None = None) -> Server[Any]:
    """The MCP server over ``tools``. ``http``: it will be served over streamable HTTP, where
    it advertises the handshake protocol versions only (see the module docstring)."""

    async def list_tools(ctx: ServerRequestContext[Any, Any],
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools.listing)

    async def call_tool(ctx: ServerRequestContext[Any, Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult:
        session = session_for(ctx)
        if session is None:
            return error_result(_NO_SESSION)
        return tools.call(session, params.name, params.arguments)

    server: Server[Any] = Server(
        SERVER_NAME, version=__version__, instructions=instructions or describe(tools),
        get_tool_input_schema=tools.input_schema, on_list_tools=list_tools, on_call_tool=call_tool,
    )  # fmt: skip
    if http:
        async def discover(ctx: ServerRequestContext[Any, Any], params: types.RequestParams | None) -> types.DiscoverResult:
            return types.DiscoverResult(supported_versions=list(HANDSHAKE_PROTOCOL_VERSIONS),
                                        capabilities=server.get_capabilities(), instructions=server.instructions)

        server.add_request_handler("server/discover", types.RequestParams, discover)
    return server


def describe(tools: SandboxTools) -> str:
    """The server's instructions: what it is and the rules a client should know."""
    envs = ", ".join(f"{name} (seed {sim.env.seed})" for name, sim in sorted(tools.simulators.items()))
    return (f"Deterministic mock HTTP services generated from OpenAPI specs: {envs}. Each tool is one "
            "operation; its result is the HTTP status and body. Each MCP session is an isolated "
            "sandbox: writes persist within the session and nobody else sees them.")


def serve_stdio(tools: SandboxTools) -> None:
    """Serve over this process's stdin and stdout until the client closes them."""
    server = build_server(tools)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)


def http_app(tools: SandboxTools, *, host: str = "127.0.0.1") -> ASGIApp:
    """The streamable-HTTP app: MCP at ``/mcp``, a health check at ``/_sim/health``."""
    server = build_server(tools, http=True)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "transport": "mcp", "path": MCP_PATH, "sessions": tools.session_count(),
                             "envs": {name: sim.fingerprint() for name, sim in sorted(tools.simulators.items())}})

    app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host, transport_security=_security(host),
                                     custom_starlette_routes=[Route(HEALTH_PATH, health, methods=["GET"])])
    return _DropEndedSessions(app, tools.drop)


def _security(host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection on every bind address, 0.0.0.0 in a container included (its port is
    published on the host's loopback): the Host header must name loopback, or the address bound."""
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    if host not in ("0.0.0.0", "::", *hosts):
        hosts.append(f"[{host}]" if ":" in host else host)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                     allowed_hosts=[f"{h}:*" for h in hosts],
                                     allowed_origins=[f"http://{h}:*" for h in hosts])


class _DropEndedSessions:
    """Frees a session's simulator state when its client ends it (``DELETE /mcp``)."""

    def __init__(self, app: Starlette, drop: Callable[[str], None]) -> None:
        self.app = app
        self.drop = drop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] == "DELETE" and scope["path"] == MCP_PATH:
            session_id = dict(scope["headers"]).get(SESSION_HEADER.encode())
            if session_id:
                self.drop(f"mcp-{session_id.decode('latin-1')}")


def serve_http(tools: SandboxTools, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve over streamable HTTP on ``host:port`` until interrupted (uvicorn)."""
    import uvicorn

    uvicorn.run(http_app(tools, host=host), host=host, port=port, log_level="warning")

"""The control operations as MCP tools (``toolgrad sim mcp --control``): reset, snapshot,
restore and state hash of the caller's own session, in every environment the server serves.

They mirror the HTTP control API under ``/_sim`` (:meth:`Simulator.reset`, ``snapshot``,
``restore``, ``state_hash``). A snapshot id is content-addressed (the state hash), so the same
state always gives the same id; ``restore`` takes the mapping ``snapshot`` returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import mcp_types as types

from simulator.canonical import json_bytes
from simulator.errors import SessionGone, SimulatorError
from simulator.service.simulator import Simulator

CONTROL_PREFIX = "sim__"
_STATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Per environment: the session's state hash and its number of writes.",
    "additionalProperties": {
        "type": "object",
        "properties": {"hash": {"type": "string"}, "writes": {"type": "integer"}},
        "required": ["hash", "writes"],
    },
}
_SNAPSHOT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Per environment: a snapshot id, as sim__snapshot returned it.",
    "additionalProperties": {"type": "string"},
}
_NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}


class ControlTools:
    """The four control tools over ``simulators`` (environment name -> simulator)."""

    def __init__(self, simulators: Mapping[str, Simulator], *, taken: set[str]) -> None:
        self.simulators = dict(simulators)
        self._tools: dict[str, tuple[types.Tool, Callable[[str, dict[str, Any]], types.CallToolResult]]] = {
            f"{CONTROL_PREFIX}state_hash": (_tool("state_hash", "The state hash of this session, per environment "
                                                 "(equal hashes: equal states).", _NO_ARGUMENTS), self._state),
            f"{CONTROL_PREFIX}reset": (_tool("reset", "Reset this session to the seeded initial state in every "
                                            "environment.", _NO_ARGUMENTS), self._reset),
            f"{CONTROL_PREFIX}snapshot": (_tool("snapshot", "Store this session's state; returns the snapshot "
                                               "ids to pass to sim__restore.", _NO_ARGUMENTS), self._snapshot),
            f"{CONTROL_PREFIX}restore": (_tool("restore", "Replace this session's state by a snapshot that "
                                              "sim__snapshot returned.", {
                "type": "object", "properties": {"snapshot": _SNAPSHOT_SCHEMA}, "required": ["snapshot"]}),
                self._restore),
        }  # fmt: skip
        clash = sorted(set(self._tools) & taken)
        if clash:
            raise SimulatorError(f"operation tools are named like the control tools ({', '.join(clash)}); "
                                 "serve without --control or rename the environment")

    def listing(self) -> list[types.Tool]:
        return [tool for tool, _ in self._tools.values()]

    def owns(self, name: str) -> bool:
        return name in self._tools

    def call(self, session: str, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Run a control tool; an evicted session (beyond the server's limits) is a tool error."""
        try:
            return self._tools[name][1](session, arguments)
        except SessionGone as exc:
            return _result({"error": str(exc)}, error=True)

    def _state(self, session: str, arguments: dict[str, Any]) -> types.CallToolResult:
        return _result({name: {"hash": sim.state_hash(session), "writes": sim.session(session).writes}
                        for name, sim in sorted(self.simulators.items())})

    def _reset(self, session: str, arguments: dict[str, Any]) -> types.CallToolResult:
        for sim in self.simulators.values():
            sim.reset(session)
        return self._state(session, arguments)

    def _snapshot(self, session: str, arguments: dict[str, Any]) -> types.CallToolResult:
        return _result({"snapshot": {name: sim.snapshot(session) for name, sim in sorted(self.simulators.items())}})

    def _restore(self, session: str, arguments: dict[str, Any]) -> types.CallToolResult:
        snapshot = arguments.get("snapshot")
        if not isinstance(snapshot, dict) or set(snapshot) != set(self.simulators):
            return _result({"error": f"'snapshot' must map each of {sorted(self.simulators)} to a snapshot id, "
                                     "as sim__snapshot returned it"}, error=True)
        for name in sorted(snapshot):
            if not isinstance(snapshot[name], str) or not self.simulators[name].registry.has_snapshot(snapshot[name]):
                return _result({"error": f"no snapshot {snapshot[name]!r} of {name}"}, error=True)
        for name in sorted(snapshot):
            self.simulators[name].restore(str(snapshot[name]), session)
        return self._state(session, {})


def _tool(action: str, description: str, schema: dict[str, Any]) -> types.Tool:
    read_only = action == "state_hash"
    return types.Tool(name=f"{CONTROL_PREFIX}{action}", description=description, input_schema=schema,
                      annotations=types.ToolAnnotations(read_only_hint=read_only, destructive_hint=not read_only,
                                                        open_world_hint=False))


def _result(payload: dict[str, Any], *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=json_bytes(payload).decode())],
                                structured_content=payload, is_error=error)

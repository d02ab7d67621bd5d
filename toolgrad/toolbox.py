"""Tools across several environments, and real calls to them in a sample's sandbox session.

A :class:`Toolbox` owns one :class:`~simulator.sandboxes.protocol.Sandbox` per environment. Tool names
are qualified ``<env>__<operation>`` (at most 64 characters, unique), so a model sees one flat
list. Calls run in a named session; :meth:`Toolbox.fork` copies a session's state in every
environment (the Executor runs each proposal in its own fork).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from simulator.environments.environment import Environment, load_environments
from simulator.sandboxes.inprocess import InProcessSandbox
from simulator.sandboxes.protocol import Sandbox
from simulator.tools import (
    SEPARATOR,
    Tool,
    ToolCallError,
    build_request,
    error_text,
    qualified_tools,
    response_body,
    result_text,
)

__all__ = ["SEPARATOR", "BoundTool", "ToolResult", "Toolbox"]


@dataclass(frozen=True, slots=True)
class BoundTool:
    name: str  # qualified, as the model sees it
    env: str
    tool: Tool

    def openai(self) -> dict[str, Any]:
        spec = self.tool.openai()
        spec["function"]["name"] = self.name
        return spec


@dataclass(frozen=True, slots=True)
class ToolResult:
    tool: str
    arguments: dict[str, Any]
    status: int  # HTTP status; 0 when the call could not be made (unknown tool, bad arguments)
    body: Any  # parsed JSON body, text, or None
    state_hash: str  # the environment's session state after the call ("" when not made)
    error: str = ""  # why the call could not be made

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and not self.error

    def content(self) -> str:
        """What a model is shown as the tool's result."""
        return error_text(self.error) if self.error else result_text(self.status, self.body)


class Toolbox:
    def __init__(self, sandboxes: Mapping[str, Sandbox], environments: Mapping[str, Environment]) -> None:
        self.sandboxes = dict(sandboxes)
        self.environments = dict(environments)
        specs = {name: env.spec for name, env in self.environments.items()}
        self.tools: dict[str, BoundTool] = {
            name: BoundTool(name, env_name, tool) for name, (env_name, tool) in qualified_tools(specs).items()
        }

    @classmethod
    def in_process(cls, refs: Iterable[str], *, seed: int | None = None) -> Toolbox:
        """A toolbox over in-process sandboxes for the named environments."""
        envs = load_environments(refs, seed=seed)
        return cls({name: InProcessSandbox(env) for name, env in envs.items()}, envs)

    def fingerprints(self) -> dict[str, dict[str, Any]]:
        return {name: self.sandboxes[name].fingerprint() for name in sorted(self.sandboxes)}

    def names(self) -> list[str]:
        return sorted(self.tools)

    def openai_tools(self, names: Iterable[str]) -> list[dict[str, Any]]:
        return [self.tools[n].openai() for n in names if n in self.tools]

    def call(self, session: str, name: str, arguments: Any) -> ToolResult:
        """Make a real call. Never raises for a bad call: the result says what went wrong."""
        bound = self.tools.get(name)
        args = arguments if isinstance(arguments, dict) else {}
        if bound is None:
            return ToolResult(name, args, 0, None, "", f"unknown tool {name!r}")
        try:
            request = build_request(bound.tool, arguments, self.environments[bound.env].spec.base_path)
        except ToolCallError as exc:
            return ToolResult(name, args, 0, None, "", str(exc))
        sandbox = self.sandboxes[bound.env]
        response = sandbox.request(request, session=session)
        return ToolResult(name, args, response.status, response_body(response), sandbox.state_hash(session))

    def state_hashes(self, session: str) -> dict[str, str]:
        return {name: self.sandboxes[name].state_hash(session) for name in sorted(self.sandboxes)}

    def fork(self, source: str, target: str) -> None:
        """Make ``target`` a copy of ``source`` in every environment."""
        for sandbox in self.sandboxes.values():
            sandbox.restore(sandbox.snapshot(source), target)

    def reset(self, session: str) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.reset(session)

    def drop(self, session: str) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.drop(session)

    def forget_snapshots(self) -> None:
        """Free the snapshots forks were made from (in-process sandboxes keep them until told)."""
        for sandbox in self.sandboxes.values():
            sandbox.forget_snapshots()

    def close(self) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.close()

"""The four ToolGrad modules as one interface, so the loop runs the same with a model or without.

``LLMPolicy`` (toolgrad/llm_policy.py) asks a chat model; ``OfflinePolicy`` (toolgrad/offline.py)
is a deterministic algorithm that needs none. The loop (toolgrad/loop.py) owns the sandbox:
a policy never touches sessions, it only decides, and during execution calls the ``call``
function it is handed (which makes a real call in the proposal's own fork).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .records import Chain, Cost, Proposal, Selection, Step
from .toolbox import BoundTool, ToolResult


class StageError(Exception):
    """A module could not do its job this iteration (bad model output after repairs, model
    unreachable after retries, nothing sensible to propose). The loop records it and moves on."""

    def __init__(self, stage: str, reason: str) -> None:
        self.stage = stage
        self.reason = reason
        super().__init__(f"{stage}: {reason}")


@dataclass(slots=True)
class Workflow:
    """What the sample is so far: chains of real calls, and the query/answer written for them."""

    chains: list[Chain] = field(default_factory=list)
    query: str = ""
    answer: str = ""

    def steps(self) -> list[tuple[int, int, Step]]:
        return [(ci, si, s) for ci, c in enumerate(self.chains) for si, s in enumerate(c.steps)]


@dataclass(frozen=True, slots=True)
class Context:
    """What every module sees in one iteration."""

    seed: int
    iteration: int
    batch: list[BoundTool]  # the sampled mini-batch
    workflow: Workflow
    k: int  # how many proposals to make
    max_agent_steps: int


# Executes one tool call for real in the proposal's fork and returns what came back.
CallFn = Callable[[str, dict[str, Any]], ToolResult]


@dataclass(frozen=True, slots=True)
class ExecutedCall:
    result: ToolResult
    # argument name -> (chain, step, pointer) when the policy knows the value's origin
    sources: dict[str, tuple[int, int, str]] = field(default_factory=dict)


class Policy(Protocol):
    name: str  # "offline" or "openai"

    def propose(self, ctx: Context) -> list[Proposal]: ...

    def execute(self, ctx: Context, proposal: Proposal, call: CallFn) -> list[ExecutedCall]:
        """Run the proposal as an agent (at most ``ctx.max_agent_steps`` calls)."""
        ...

    def select(self, ctx: Context, candidates: list[tuple[int, list[Step]]]) -> Selection:
        """Pick one successful execution (by proposal index) or reject all, with a rationale."""
        ...

    def update(self, ctx: Context, selection: Selection, workflow: Workflow) -> tuple[str, str]:
        """The rewritten (query, final answer) for ``workflow`` (already holding the new calls)."""
        ...

    def cost(self) -> Cost:
        """Model calls and tokens spent since the policy was made for this sample."""
        ...

    def cache_keys(self) -> list[str]:
        """Content-addressed keys of every model exchange made for this sample."""
        ...

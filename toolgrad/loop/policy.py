"""The four ToolGrad modules as one interface, so the loop runs the same with a model or without.

``LLMPolicy`` (toolgrad/policies/model/policy.py) asks a chat model; ``OfflinePolicy`` (toolgrad/policies/offline/policy.py)
is a deterministic algorithm that needs none. The loop (toolgrad/loop/sample.py) owns the sandbox:
a policy never touches sessions, it only decides, and during execution calls the ``call``
function it is handed (which makes a real call in the proposal's own fork).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from toolgrad.records import Chain, Cost, Proposal, Selection, Step
from toolgrad.toolbox import SEPARATOR, BoundTool, ToolResult


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


def no_problem(workflow: Workflow, query: str, answer: str) -> str:
    return ""


# Why a (query, answer) cannot be written for a workflow's chains ("" when it can).
TextCheck = Callable[[Workflow, str, str], str]


@dataclass(frozen=True, slots=True)
class Context:
    """What every module sees in one iteration."""

    seed: int
    iteration: int
    batch: list[BoundTool]  # the sampled mini-batch
    workflow: Workflow
    k: int  # how many proposals to make
    max_agent_steps: int
    # the loop's validity check of an update (toolgrad.validity.checks): an updater may use it to
    # rewrite before the loop rejects what it wrote
    check_text: TextCheck = no_problem


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


# -- what a written query must be ----------------------------------------------------------------


def identifier_like(name: str) -> bool:
    """A name that cannot be an ordinary word: a separator, camelCase or a digit after a letter."""
    return len(name) >= 4 and bool(re.search(r"[_\-.]|[a-z][A-Z]|[A-Za-z][0-9]", name))


def forbidden_names(tools: Iterable[tuple[str, str]]) -> list[str]:
    """Names a query must not contain, from (qualified tool name, operation id) pairs: the tool
    name, its part after the environment prefix, and the operation id, where identifier-like (a
    plain word such as ``search`` is left alone: it is also English)."""
    names: set[str] = set()
    for tool, operation_id in tools:
        names.update({tool, tool.split(SEPARATOR, 1)[-1], operation_id})
    return sorted(n for n in names if identifier_like(n))


def named_apis(text: str, names: Iterable[str]) -> list[str]:
    """The API names ``text`` mentions as whole tokens, ignoring case and which separators
    (``_``, ``-``, ``.``) join the parts: ``tictactoe_get-board.json`` names ``tictactoe__get-board``."""
    lowered = _separators(text.lower())
    runs = set(_ALNUM_RUN.findall(lowered))
    hits = []
    for name in names:
        n, lead = _name_token(name)
        if lead and lead not in runs:
            continue  # a whole-token match starts with its leading run, a whole run of the text
        start = lowered.find(n)
        while start != -1:
            before = lowered[start - 1] if start else " "
            end = start + len(n)
            after = lowered[end] if end < len(lowered) else " "
            if not before.isalnum() and not after.isalnum():
                hits.append(name)
                break
            start = lowered.find(n, start + 1)
    return hits


def _separators(text: str) -> str:
    return re.sub(r"[_\-.]+", "_", text)


_ALNUM_RUN = re.compile(r"[^\W_]+")  # a run of characters str.isalnum() accepts


@lru_cache(maxsize=1 << 16)  # the same few hundred API names, checked against every query
def _name_token(name: str) -> tuple[str, str]:
    """The name as :func:`named_apis` finds it, and its leading alphanumeric run ("" if none)."""
    token = _separators(name.lower())
    lead = _ALNUM_RUN.match(token)
    return token, lead.group(0) if lead else ""


def query_problem(query: str, answer: str, names: Iterable[str]) -> str:
    """Why ``query``/``answer`` cannot be a sample's text ("" when they can): empty, no words
    (a number, escaped JSON), or naming one of the API ``names``. The loop enforces it; a model
    policy may use it to ask for a rewrite first."""
    if not isinstance(query, str) or not query.strip():
        return "empty query"
    if not isinstance(answer, str) or not answer.strip():
        return "empty answer"
    if len(re.findall(r"[^\W\d_]", query)) < 3:  # letters of any script (CJK has no spaces)
        return "the query has no words"
    named = named_apis(query, names)
    if named:
        return f"the query names API(s): {', '.join(named)}"
    return ""

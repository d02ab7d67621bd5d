"""The four ToolGrad modules asked of a chat model: :class:`LLMPolicy` implements :class:`Policy`.

* Proposer: k task proposals (an instruction and at most 3 tools of the batch), structured output;
  it sees every tool of the mini-batch as a compact signature with its parameters (as the paper's
  proposer sees the whole batch of B tools).
* Executor: a tool-calling agent with the proposal's tools, at most ``ctx.max_agent_steps`` real
  calls through the ``call`` function it is handed; results go back as ``tool`` messages. When
  the model answers its first turn without a call, the turn is asked again with ``tool_choice``
  naming the proposal's first tool (small models often need that; servers that take a named
  function constrain the arguments to its schema).
* Selector: pick one successful execution (or reject all) with a rationale, structured output.
* Updater: the rewritten user query and final answer, structured output. Text the loop would
  reject (a query that names a tool, or that fails the validity checks of
  :mod:`toolgrad.validity.checks`: a value the user must supply left unstated, a record from an earlier
  result not named, an answer value no response holds) gets up to :data:`REWRITE_TURNS` rewrite
  turns naming the problem.

A model failure becomes :class:`~toolgrad.loop.policy.StageError` (recorded by the loop), except a
``--replay-only`` cache miss (:class:`~toolgrad.backends.openai.CacheMiss`), which propagates:
a replay that misses is a broken run, not a failed stage. Make one policy per sample
(:func:`make_llm_policy` is cheap and shares one client per configuration): its :meth:`cost`
and :meth:`cache_keys` count that sample only.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from toolgrad.backends.base import ChatModel, Completion, EndpointError, ModelError
from toolgrad.backends.cache import ResponseCache
from toolgrad.backends.openai import CacheMiss, OpenAIChat
from toolgrad.backends.usage import Usage
from toolgrad.loop.policy import (
    CallFn,
    Context,
    ExecutedCall,
    Policy,
    StageError,
    Workflow,
    forbidden_names,
    query_problem,
)
from toolgrad.policies.model import prompts
from toolgrad.records import Cost, Proposal, Selection, Step

MODULES = ("propose", "execute", "select", "update")
DEFAULT_MAX_TOKENS = {"propose": 320, "execute": 256, "select": 192, "update": 384}
REWRITE_TURNS = 2  # updater turns spent fixing what the loop would reject
# a local CPU server generating a few hundred tokens under a grammar can take minutes: a request
# given up on keeps the server busy, so the retry would only queue behind it
DEFAULT_TIMEOUT_S = 180.0


class LLMPolicy:
    """:class:`Policy` over a :class:`ChatModel`. ``temperature`` is the sampling temperature of
    every module (the paper's code samples at 1.0; the default 0.0 makes a local server's replies
    repeatable even without the cache); ``temperatures`` and ``max_tokens`` override it per module
    (``propose``, ``execute``, ``select``, ``update``; unset max_tokens default to
    :data:`DEFAULT_MAX_TOKENS`). ``tools_budget`` and ``workflow_budget`` bound (in characters) the
    tool list and the workflow shown in a prompt (every tool is shown; descriptions give way
    first); ``output_chars`` bounds each tool result."""

    name = "openai"

    def __init__(
        self,
        chat: ChatModel,
        *,
        temperature: float = 0.0,
        temperatures: Mapping[str, float] | None = None,
        max_tokens: Mapping[str, int] | None = None,
        tools_budget: int = 6400,
        workflow_budget: int = 1200,
        output_chars: int = 400,
        max_proposal_tools: int = 3,
    ) -> None:
        unknown = sorted((set(temperatures or {}) | set(max_tokens or {})) - set(MODULES))
        if unknown:
            raise ValueError(f"unknown module(s) {unknown}; expected some of {list(MODULES)}")
        # a scoped view counts this policy's calls apart from other samples sharing the client
        scoped = getattr(chat, "scoped", None)
        self.chat: ChatModel = scoped() if callable(scoped) else chat
        self.temperatures = {m: float(temperature) for m in MODULES} | dict(temperatures or {})
        self.max_tokens = DEFAULT_MAX_TOKENS | dict(max_tokens or {})
        self.tools_budget, self.workflow_budget, self.output_chars = tools_budget, workflow_budget, output_chars
        self.max_proposal_tools = max_proposal_tools
        self._lock = threading.Lock()
        self._calls: list[Completion] = []  # for chat models that keep no usage of their own
        self._proposals: dict[int, list[Proposal]] = {}  # iteration -> what propose() returned

    # -- the four modules -------------------------------------------------------------------------

    def propose(self, ctx: Context) -> list[Proposal]:
        specs = [b.openai() for b in ctx.batch]
        tools_text, shown = prompts.render_tools(specs, self.tools_budget)
        if not shown:
            raise StageError("propose", "the mini-batch holds no tools")
        messages = prompts.proposer_messages(tools_text, self._workflow_text(ctx.workflow), ctx.k)
        schema = prompts.proposer_schema(shown, ctx.k, self.max_proposal_tools)
        document = self._structured("propose", messages, schema)
        proposals = []
        allowed = set(shown)
        for item in document["proposals"][: ctx.k]:
            tools = list(dict.fromkeys(t for t in item["tools"] if t in allowed))[: self.max_proposal_tools]
            if tools and item["instruction"].strip():
                proposals.append(Proposal(instruction=item["instruction"].strip(), tools=tools))
        if not proposals:
            raise StageError("propose", "the model proposed no task with tools from the batch")
        # already as the loop normalises them (batch tools, at most k and max_proposal_tools),
        # so the loop's proposal indices are these; select() shows their instructions
        self._proposals[ctx.iteration] = proposals
        return proposals

    def execute(self, ctx: Context, proposal: Proposal, call: CallFn) -> list[ExecutedCall]:
        by_name = {b.name: b for b in ctx.batch}
        tools = [prompts.compact_tool_spec(by_name[n].openai()) for n in proposal.tools if n in by_name]
        if not tools:
            raise StageError("execute", f"none of the proposal's tools {proposal.tools} is in the batch")
        allowed = [t["function"]["name"] for t in tools]
        messages = prompts.executor_messages(proposal, self._workflow_text(ctx.workflow))
        executed: list[ExecutedCall] = []
        turns, max_turns = 0, ctx.max_agent_steps + 3  # bounds turns wasted on unknown tools
        while len(executed) < ctx.max_agent_steps and turns < max_turns:
            completion = self._ask("execute", messages, tools=tools, tool_choice="auto")
            turns += 1
            if not completion.tool_calls and not executed and turns == 1:
                named = {"type": "function", "function": {"name": allowed[0]}}
                completion = self._ask("execute", messages, tools=tools, tool_choice=named)
                turns += 1
            if not completion.tool_calls:
                break
            messages.append({"role": "assistant", "content": completion.content, "tool_calls": [
                {"id": tc.id, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}
                for tc in completion.tool_calls]})
            for tc in completion.tool_calls:
                content = self._run_call(tc.name, tc.arguments, allowed, call, executed, ctx.max_agent_steps)
                messages.append({"role": "tool", "tool_call_id": tc.id, "content": content})
        return executed

    def select(self, ctx: Context, candidates: list[tuple[int, list[Step]]]) -> Selection:
        if not candidates:
            raise StageError("select", "no successful execution to choose from")
        proposals = self._proposals.get(ctx.iteration, [])
        rendered = [(j, proposals[j].instruction if j < len(proposals) else "", steps) for j, steps in candidates]
        chains = len(ctx.workflow.chains)
        messages = prompts.selector_messages(self._workflow_text(ctx.workflow), rendered, chains,
                                             max(80, self.output_chars // max(1, len(candidates))))
        document = self._structured("select", messages, prompts.selector_schema([j for j, _ in candidates], chains))
        choice, action, chain = document["choice"], document["action"], document["chain"]
        rationale = str(document["rationale"]).strip()
        if action == "reject" or choice is None:
            return Selection(proposal=None, action="reject", chain=None, rationale=rationale)
        return Selection(proposal=choice, action=action, chain=chain if action == "extend" else None,
                         rationale=rationale)

    def update(self, ctx: Context, selection: Selection, workflow: Workflow) -> tuple[str, str]:
        shown = Workflow(chains=workflow.chains)  # the new calls, without the old query/answer
        messages = prompts.updater_messages(self._workflow_text(shown), ctx.workflow.query, ctx.workflow.answer,
                                            selection.rationale)
        document = self._structured("update", messages, prompts.UPDATER_SCHEMA)
        names = _tool_names(ctx, workflow)
        for _ in range(REWRITE_TURNS):  # the loop rejects text that still has a problem
            query, answer = document["query"].strip(), document["answer"].strip()
            problem = query_problem(query, answer, names) or ctx.check_text(workflow, query, answer)
            if not problem:
                break
            messages += [{"role": "assistant", "content": orjson.dumps(document).decode()},
                         {"role": "user", "content": prompts.rewrite_request(problem)}]
            document = self._structured("update", messages, prompts.UPDATER_SCHEMA)
        return document["query"].strip(), document["answer"].strip()

    # -- accounting -------------------------------------------------------------------------------

    def usage(self) -> Usage:
        """Everything this policy's chat model spent (requests and cache hits included)."""
        usage = getattr(self.chat, "usage", None)
        if callable(usage):
            result: Usage = usage()
            return result
        with self._lock:
            calls = list(self._calls)
        return Usage(calls=len(calls), prompt_tokens=sum(c.prompt_tokens for c in calls),
                     completion_tokens=sum(c.completion_tokens for c in calls),
                     cache_hits=sum(c.cached for c in calls),
                     cache_keys=tuple(dict.fromkeys(c.cache_key for c in calls if c.cache_key)))

    def cost(self) -> Cost:
        usage = self.usage()
        return Cost(model_calls=usage.calls, prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens)

    def cache_keys(self) -> list[str]:
        return list(self.usage().cache_keys)

    # -- helpers --------------------------------------------------------------------------------------

    def _workflow_text(self, workflow: Workflow) -> str:
        return prompts.render_workflow(workflow, self.workflow_budget)

    def _ask(self, stage: str, messages: list[dict[str, Any]], **kw: Any) -> Completion:
        try:
            completion = self.chat.complete(list(messages), temperature=self.temperatures[stage],
                                            max_tokens=self.max_tokens[stage], **kw)
        except (CacheMiss, EndpointError):
            raise  # the run stops: every later request would fail the same way
        except ModelError as exc:
            raise StageError(stage, f"model error: {exc}") from exc
        with self._lock:
            self._calls.append(completion)
        return completion

    def _structured(self, stage: str, messages: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
        completion = self._ask(stage, messages, json_schema=schema)
        try:
            document = orjson.loads(completion.content)
        except orjson.JSONDecodeError as exc:  # a ChatModel that does not validate
            raise StageError(stage, f"the model's reply is not JSON: {prompts.clip(completion.content, 200)!r}") from exc
        if not isinstance(document, dict):
            raise StageError(stage, "the model's reply is not a JSON object")
        return document

    def _run_call(self, name: str, arguments: str, allowed: list[str], call: CallFn,
                  executed: list[ExecutedCall], limit: int) -> str:
        """Make one call the model asked for; what the model is shown as its result. A call to
        a tool not in the proposal, or with arguments that are not a JSON object, is not made."""
        if len(executed) >= limit:
            return _error(f"step limit of {limit} tool calls reached")
        if name not in allowed:
            return _error(f"unknown tool {name!r}; use one of: {', '.join(allowed)}")
        try:
            parsed = orjson.loads(arguments) if arguments.strip() else {}
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            return _error("the arguments must be a JSON object")
        result = call(name, parsed)
        executed.append(ExecutedCall(result=result))
        return prompts.clip(result.content(), self.output_chars)


def _error(message: str) -> str:
    return orjson.dumps({"error": message}).decode()


def _tool_names(ctx: Context, workflow: Workflow) -> list[str]:
    return forbidden_names([*((b.name, b.tool.operation_id) for b in ctx.batch),
                            *((step.tool, step.operation_id) for _, _, step in workflow.steps())])


# -- the factory the CLI calls --------------------------------------------------------------------

_CLIENT_OPTIONS = frozenset({"api_key", "timeout", "max_retries", "response_format", "repair_attempts", "seed"})
_clients: dict[tuple[Any, ...], OpenAIChat] = {}
_clients_lock = threading.Lock()


def shared_chat(model: str, base_url: str, cache_dir: str | None, replay_only: bool, **options: Any) -> OpenAIChat:
    """One :class:`OpenAIChat` per configuration in this process (connections, the capabilities
    detected and the cache are shared by every sample)."""
    key = (model, base_url, str(Path(cache_dir).resolve()) if cache_dir else None, replay_only,
           tuple(sorted(options.items())))
    with _clients_lock:
        chat = _clients.get(key)
        if chat is None:
            cache = ResponseCache(cache_dir) if cache_dir else None
            chat = OpenAIChat(model, base_url, cache=cache, replay_only=replay_only, **options)
            _clients[key] = chat
        return chat


def make_llm_policy(model: str, base_url: str, cache_dir: str | None, replay_only: bool, **kw: Any) -> Policy:
    """A fresh :class:`LLMPolicy` for one sample over the shared client for this configuration.
    Keyword options go to :class:`OpenAIChat` (``timeout``, default :data:`DEFAULT_TIMEOUT_S`;
    ``max_retries``, ``response_format``, ``repair_attempts``, ``seed``, ``api_key``) or to
    :class:`LLMPolicy` (the rest)."""
    client_options = {"timeout": DEFAULT_TIMEOUT_S} | {k: v for k, v in kw.items() if k in _CLIENT_OPTIONS}
    policy_options = {k: v for k, v in kw.items() if k not in _CLIENT_OPTIONS}
    chat = shared_chat(model, base_url, cache_dir, replay_only, **client_options)
    return LLMPolicy(chat, **policy_options)

"""DFSDT's decisions asked of a chat model, as ToolBench asks them (prompts in our own words).

* **Query**: one structured-output call showing every tool of the sampled set (as the answer-first
  proposer is shown its mini-batch, in the same character budget), asking for a multi-step
  request and the 2-4 tools it needs; one rewrite turn when the request names an API (the
  answer-first updater gets such turns too).
* **Expansion**: one chat completion with ``tools`` = every tool of the sampled set (compact
  specs, as the answer-first executor gets) plus :func:`finish_tool`, ``tool_choice: "auto"``.
  The conversation is ToolBench's: a system prompt (the agent's rules and the services), the
  request, then each turn of the path as an assistant message (its thought and function call)
  and the call's result as a ``tool`` message. At a node that already has children, a user
  message in the manner of ToolBench's ``DIVERSITY_PROMPT`` lists what they did (function,
  arguments, result) and asks for something different; it is not part of the children's
  conversation. Of several function calls in one reply the first is taken (ToolBench's model
  returns one ``function_call``).

Every completion goes through one :class:`~benchmarks.baseline.budget.BudgetedChat` per seed, which
counts the seed's model calls, tokens and HTTP requests and enforces its cap.
"""

from __future__ import annotations

from typing import Any

import orjson

from toolgrad.backends.base import ChatModel, Completion
from toolgrad.loop.policy import CallFn, StageError, named_apis
from toolgrad.loop.sample import api_names
from toolgrad.policies.model import prompts
from toolgrad.records import Cost
from toolgrad.toolbox import Toolbox

from .budget import BudgetedChat, Spent
from .dfs_search import FINISH, GIVE_ANSWER, GIVE_UP, Move, Node, Query, Turn

QUERY_MAX_TOKENS, SOLVER_MAX_TOKENS = 320, 256  # the answer-first proposer's and executor's
TOOLS_BUDGET = 6400  # characters of the tool list the query writer sees (the proposer's budget)
OUTPUT_CHARS = 400  # characters of a tool result the model is shown (the executor's)

QUERY_SYSTEM = ("You write realistic requests that users make to an assistant that can use web APIs. "
                "Reply with JSON only.")

SOLVER_RULES = (
    "You are an agent that carries out a user's task by calling functions (tools). At each step, first "
    "think briefly about where you stand and what to do next (at most five sentences), then call one "
    "function to act. Each call puts you in a new state, and its effects cannot be undone: to start "
    f'over, call {FINISH} with return_type "{GIVE_UP}". You may need several attempts; try one '
    "possibility per attempt.\n"
    f'Always end with {FINISH}: with return_type "{GIVE_ANSWER}" and a final_answer holding everything '
    "the user needs, with the real values from the results, once you have them; with "
    f'"{GIVE_UP}" when you cannot do the task from here or the calls keep failing.\n'
    "Services you can use:\n"
)
DIVERSITY = (
    "You have tried this task from this very state before, and those attempts failed. Here are the "
    "actions taken from this state so far:\n{previous}\n"
    "Look at the state you are in and at these actions, then take an action that differs from all of them."
)


def finish_tool() -> dict[str, Any]:
    """The ``Finish`` function of ToolBench's DFSDT: ``return_type`` give_answer (with
    ``final_answer``) or give_up_and_restart."""
    return {"type": "function", "function": {
        "name": FINISH,
        "description": ("End an attempt; call it at the end of every attempt. With a result that answers the "
                        f'task, give it: return_type "{GIVE_ANSWER}" and final_answer, the only part the '
                        "user sees, so it must say everything needed. If you cannot go on from the current "
                        f'state, restart: return_type "{GIVE_UP}".'),
        "parameters": {"type": "object", "properties": {
            "return_type": {"type": "string", "enum": [GIVE_ANSWER, GIVE_UP]},
            "final_answer": {"type": "string", "description": (
                f'The final answer to the user; required when return_type is "{GIVE_ANSWER}".')},
        }, "required": ["return_type"]},
    }}


def query_schema(tool_names: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": ["query", "tools"], "properties": {
        "query": {"type": "string", "minLength": 1},
        "tools": {"type": "array", "minItems": 2, "maxItems": 4, "items": {"type": "string", "enum": tool_names}},
    }}


def query_messages(tools_text: str) -> list[dict[str, Any]]:
    user = (f"Tools:\n{tools_text}\n\nWrite one request a user might make that needs 2 to 4 of these tools "
            "used one after another (a multi-step task), with the concrete values the user would know. Do not "
            "name tools, APIs, functions or endpoints. Give the request and the names of the tools it needs.\n"
            'JSON: {"query": "...", "tools": ["tool name", "tool name"]}')
    return [{"role": "system", "content": QUERY_SYSTEM}, {"role": "user", "content": user}]


def query_rewrite_request(named: list[str]) -> str:
    return (f"The request names {', '.join(named)}. Rewrite it as a person would say it, without naming any "
            'API or tool. JSON: {"query": "...", "tools": ["tool name", "tool name"]}')


def system_prompt(toolbox: Toolbox, pool: list[str]) -> str:
    """The rules and, one line each, the services whose tools are in ``pool``."""
    envs = sorted({toolbox.tools[n].env for n in pool if n in toolbox.tools})
    lines = []
    for i, name in enumerate(envs, 1):
        spec = toolbox.environments[name].spec
        about = " ".join(f"{spec.title}. {spec.description}".split())
        lines.append(f"{i}. {name}: {prompts.clip(about, 200)}")
    return SOLVER_RULES + "\n".join(lines)


def path_messages(system: str, query: str, path: tuple[Turn, ...]) -> list[dict[str, Any]]:
    """The conversation up to a node: the system prompt, the request, and each turn of the path."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system},
                                      {"role": "user", "content": f"{query}\nBegin!"}]
    for i, turn in enumerate(path):
        if not turn.function:
            messages.append({"role": "assistant", "content": turn.thought})
            continue
        call_id = f"call_{i}"
        messages.append({"role": "assistant", "content": turn.thought, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": turn.function, "arguments": turn.arguments}}]})
        messages.append({"role": "tool", "tool_call_id": call_id, "content": turn.observation})
    return messages


def diversity_message(tried: list[Turn], observation: str) -> dict[str, Any]:
    """What the node's earlier children did, and the node's own last observation."""
    previous = [{"name": t.function, "arguments": t.arguments, "function_output": t.observation} for t in tried]
    text = orjson.dumps(previous, option=orjson.OPT_INDENT_2).decode()
    if observation:
        text += f"\nAgain, the observation you are at: {observation}"
    return {"role": "user", "content": DIVERSITY.format(previous=text)}


def _error(message: str) -> str:
    return orjson.dumps({"error": message}).decode()


class ModelBackend:
    """A :class:`~benchmarks.baseline.dfs_search.SearchBackend` over a chat model; one per seed."""

    name = "openai"

    def __init__(self, toolbox: Toolbox, chat: ChatModel, *, cap: int | None = None, temperature: float = 0.0,
                 output_chars: int = OUTPUT_CHARS) -> None:
        self.toolbox = toolbox
        self.chat = BudgetedChat(chat, cap)
        self.temperature = temperature
        self.output_chars = output_chars
        self.forbidden = api_names(toolbox)

    # -- accounting ---------------------------------------------------------------------------------

    def used(self) -> int:
        return self.chat.spent().model_calls

    def spent(self) -> Spent:
        return self.chat.spent()

    def decisions(self) -> int:
        return self.used()

    def cost(self) -> Cost:
        usage = self.chat.usage()
        return Cost(model_calls=usage.calls, prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens)

    def cache_keys(self) -> list[str]:
        return list(self.chat.usage().cache_keys)

    # -- the query ----------------------------------------------------------------------------------

    def write_query(self, seed: int, pool: list[str]) -> Query:
        tools_text, shown = prompts.render_tools(self.toolbox.openai_tools(pool), TOOLS_BUDGET)
        messages = query_messages(tools_text)
        document = self._structured(messages, query_schema(shown))
        named = named_apis(str(document.get("query", "")), self.forbidden)
        if named:  # one rewrite turn
            messages += [{"role": "assistant", "content": orjson.dumps(document).decode()},
                         {"role": "user", "content": query_rewrite_request(named)}]
            document = self._structured(messages, query_schema(shown))
        text = str(document.get("query", "")).strip()
        tools = tuple(dict.fromkeys(t for t in document.get("tools", []) if t in shown))
        if not text:
            raise StageError("propose", "empty query")
        still = named_apis(text, self.forbidden)
        if still:
            raise StageError("propose", f"the query names API(s): {', '.join(still)}")
        if not 2 <= len(tools) <= 4:
            raise StageError("propose", f"the query needs {len(tools)} known tool(s); 2 to 4 were asked for")
        return Query(text, tools)

    def _structured(self, messages: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
        completion = self.chat.complete(list(messages), json_schema=schema, temperature=self.temperature,
                                        max_tokens=QUERY_MAX_TOKENS)
        try:
            document = orjson.loads(completion.content)
        except orjson.JSONDecodeError as exc:
            raise StageError("propose", f"the reply is not JSON: {prompts.clip(completion.content, 200)!r}") from exc
        if not isinstance(document, dict):
            raise StageError("propose", "the reply is not a JSON object")
        return document

    # -- one expansion --------------------------------------------------------------------------------

    def expand(self, seed: int, query: Query, pool: list[str], node: Node, call: CallFn) -> Move:
        tools = [prompts.compact_tool_spec(s) for s in self.toolbox.openai_tools(pool)] + [finish_tool()]
        messages = path_messages(system_prompt(self.toolbox, pool), query.text, node.path)
        if node.tried:
            messages.append(diversity_message(node.tried, node.path[-1].observation if node.path else ""))
        completion = self.chat.complete(messages, tools=tools, tool_choice="auto", temperature=self.temperature,
                                        max_tokens=SOLVER_MAX_TOKENS)
        return self._move(completion, pool, call)

    def _move(self, completion: Completion, pool: list[str], call: CallFn) -> Move:
        thought = completion.content.strip()
        if not completion.tool_calls:
            return Move("thought", Turn(thought=thought))
        chosen = completion.tool_calls[0]
        name, raw = chosen.name, chosen.arguments.strip() or "{}"
        if name == FINISH:
            return _finish(thought, raw)
        if name not in pool:
            note = f"no such function: {name!r}"
            return Move("invalid", Turn(thought, name, raw, _error(note)), note=note)
        try:
            arguments = orjson.loads(raw)
        except orjson.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            note = "the arguments must be a JSON object"
            return Move("invalid", Turn(thought, name, raw, _error(note)), note=note)
        result = call(name, arguments)
        return Move("call", Turn(thought, name, raw, prompts.clip(result.content(), self.output_chars)),
                    result=result)


def _finish(thought: str, raw: str) -> Move:
    try:
        arguments = orjson.loads(raw)
    except orjson.JSONDecodeError:
        arguments = None
    arguments = arguments if isinstance(arguments, dict) else {}
    return_type = arguments.get("return_type")
    answer = arguments.get("final_answer")
    if return_type == GIVE_UP:
        return Move("give_up", Turn(thought, FINISH, raw, '{"response":"chose to give up and restart"}'))
    if return_type == GIVE_ANSWER and isinstance(answer, str) and answer.strip():
        return Move("answer", Turn(thought, FINISH, raw, '{"response":"successfully giving the final answer."}'),
                    answer=answer.strip())
    note = (f'{FINISH} needs "return_type" ({GIVE_ANSWER} or {GIVE_UP})' if return_type not in (GIVE_ANSWER, GIVE_UP)
            else f'{FINISH} with {GIVE_ANSWER} needs a non-empty "final_answer"')
    return Move("invalid", Turn(thought, FINISH, raw, _error(note)), note=note)

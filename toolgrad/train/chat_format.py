"""The conversation format ``toolgrad train`` teaches and ``toolgrad serve-model`` serves: ChatML
with the tools listed in the system turn, calls as ``<tool_call>{"name", "arguments"}</tool_call>``
(the Hermes convention that vLLM's ``hermes`` parser and llama.cpp read) and every tool result
shown to the model in a ``tool`` turn.

One renderer, :func:`render`, builds the text in both places: the trainer cuts its examples from
it, and the server's chat handler (:func:`chat_handler`, registered by :mod:`.llama_server` as
:data:`FORMAT_NAME`) renders each request with it and parses the reply back into OpenAI
``tool_calls``. :data:`CHAT_TEMPLATE` is the same format as a transformers chat template: what the
merged model's tokenizer and GGUF carry, checked against :func:`render` in the llm tier.

llama-cpp-python's stock ``chatml-function-calling`` (the floor's server) never shows a model its
tool results and always returns an empty final answer; this format has neither limit, so a model
can take an id from one response into the next call and state facts in its answer.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

FORMAT_NAME = "toolgrad-tools"
START, END = "<|im_start|>", "<|im_end|>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
TOOL_RESULT_CHARS = 1500  # a longer tool result is cut (same cut in training and serving)
CUT_MARK = " ...(cut)"
TOOLS_HEADER = "\n\nTools:\n"
TOOLS_FOOTER = f'\n\nTo call a tool, reply with {CALL_OPEN}{{"name": ..., "arguments": {{...}}}}{CALL_CLOSE}.'
DEFAULT_MAX_TOKENS = 512
_CALL = re.compile(re.escape(CALL_OPEN) + r"(.*?)" + re.escape(CALL_CLOSE), re.DOTALL)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def tool_line(tool: dict[str, Any]) -> str:
    function = tool.get("function", tool)
    return _json({"name": function.get("name"), "description": function.get("description") or "",
                  "parameters": function.get("parameters") or {}})


def _parsed(value: Any, blank: Any = "") -> Any:
    """A JSON text's value (``blank`` for blank text); text that is not JSON, and any other value,
    as it is."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return blank
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def call_text(name: str, arguments: Any) -> str:
    """One call as the model writes it; ``arguments`` a JSON object or its text."""
    arguments = _parsed(arguments, {})
    return f"{CALL_OPEN}{_json({'name': name, 'arguments': arguments})}{CALL_CLOSE}"


def tool_result(content: Any) -> str:
    """A tool result as the model sees it: JSON with sorted keys, compact (so the results a dataset
    stores and the live ones ``toolgrad eval`` sends read alike), cut after
    :data:`TOOL_RESULT_CHARS` characters; text that is not JSON as it is."""
    content = _parsed(content)
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, separators=(",", ":"),
                                                                 sort_keys=True)
    return text if len(text) <= TOOL_RESULT_CHARS else text[:TOOL_RESULT_CHARS] + CUT_MARK


def _system(content: str, tools: Sequence[dict[str, Any]]) -> str:
    if not tools:
        return content
    return content + (TOOLS_HEADER if content else TOOLS_HEADER.lstrip("\n")) + "\n".join(tool_line(t) for t in tools) + TOOLS_FOOTER


def assistant_text(message: dict[str, Any]) -> str:
    """What the model generates for an assistant turn (without the closing ``<|im_end|>``)."""
    calls = [call_text(tc["function"]["name"], tc["function"].get("arguments"))
             for tc in message.get("tool_calls") or []]
    return "".join([str(message.get("content") or ""), *calls])


def segments(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> Iterator[tuple[str, bool]]:
    """The conversation as (text, generated) pieces: ``generated`` marks what the model says in
    an assistant turn (its text and its ``<|im_end|>``), the rest is prompt."""
    messages = list(messages)
    if tools and (not messages or messages[0].get("role") != "system"):
        messages.insert(0, {"role": "system", "content": ""})
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "assistant":
            yield f"{START}assistant\n", False
            yield assistant_text(message) + END, True
            yield "\n", False
            continue
        if role == "system" and index == 0:
            text = _system(str(message.get("content") or ""), tools)
        elif role == "tool":
            text = tool_result(message.get("content") or "")
        else:
            text = str(message.get("content") or "")
        yield f"{START}{role}\n{text}{END}\n", False


def render(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]], *,
           add_generation_prompt: bool = True) -> str:
    """The text of a conversation; with ``add_generation_prompt`` it ends where the model begins."""
    text = "".join(piece for piece, _ in segments(messages, tools))
    return text + f"{START}assistant\n" if add_generation_prompt else text


def parse_reply(text: str) -> tuple[str | None, list[dict[str, Any]]]:
    """A generated turn as (content, OpenAI tool calls). A ``<tool_call>`` block that is not
    ``{"name": str, "arguments": object}`` is not a call: it stays in the content, as written."""
    calls: list[dict[str, Any]] = []
    kept: list[str] = []
    position = 0
    for match in _CALL.finditer(text):
        kept.append(text[position:match.start()])
        position = match.end()
        try:
            value = json.loads(match.group(1))
        except json.JSONDecodeError:
            value = None
        if (isinstance(value, dict) and isinstance(value.get("name"), str)
                and isinstance(value.get("arguments", {}), dict)):
            calls.append({"id": f"call_{len(calls)}", "type": "function", "function": {
                "name": value["name"], "arguments": _json(value.get("arguments", {}))}})
        else:
            kept.append(match.group(0))
    kept.append(text[position:])
    content = "".join(kept).strip()
    return (content or None) if calls else content, calls


_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "typical_p", "seed", "presence_penalty",
             "frequency_penalty", "repeat_penalty", "tfs_z", "mirostat_mode", "mirostat_tau", "mirostat_eta",
             "logit_bias", "logits_processor")


def forced_tool(tool_choice: Any, tools: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The offered tool a ``tool_choice`` of ``{"type": "function", "function": {"name": ...}}``
    names; None for ``auto``, ``required`` (left to the model) and the like."""
    if not isinstance(tool_choice, dict):
        return None
    name = (tool_choice.get("function") or {}).get("name")
    for tool in tools:
        if tool.get("function", {}).get("name") == name:
            return dict(tool["function"])
    raise ValueError(f"tool_choice names {name!r}, which is not among the tools offered")


def _complete(llama: Any, prompt: str, max_tokens: int, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    completion = llama.create_completion(prompt=prompt, stream=False, max_tokens=max_tokens, **kwargs)
    return completion["choices"][0]["text"], completion


def _turn(llama: Any, prompt: str, tools: Sequence[dict[str, Any]], must_call: bool, max_tokens: int,
          stop: list[str], sampling: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The text of one assistant turn and the completions that made it. The model writes freely
    until it opens a ``<tool_call>`` (at once when ``must_call``); the call is then generated again
    under :func:`~.call_grammar.call_grammar` (an offered tool, its required arguments, their
    types) and closes the turn: one call per turn, as the trainer writes them."""
    text, completions = "", []
    if tools and not must_call:
        piece, completion = _complete(llama, prompt, max_tokens, stop=stop, **sampling)
        completions.append(completion)
        if CALL_OPEN not in piece:
            return piece, completions
        text = piece[:piece.index(CALL_OPEN)]
    if tools:
        from .call_grammar import call_grammar

        piece, completion = _complete(llama, prompt + text + CALL_OPEN, max_tokens, stop=[],
                                      grammar=call_grammar(tools, llama), **sampling)
        completions.append(completion)
        return text + CALL_OPEN + piece + CALL_CLOSE, completions
    piece, completion = _complete(llama, prompt, max_tokens, stop=stop, **sampling)
    return piece, [completion]


def chat_handler(*, llama: Any, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None,
                 tool_choice: Any = None, max_tokens: int | None = None, stop: Any = None, stream: bool = False,
                 **kwargs: Any) -> dict[str, Any]:
    """A llama-cpp-python chat completion handler for this format (no streaming). A call the
    model opens is held to the offered tools (a tool's name, its required arguments, their scalar
    types: :mod:`.call_grammar`); a ``tool_choice`` that names a tool starts
    the reply with a call of that tool, ``"required"`` with a call of any offered tool, and
    ``"none"`` offers no tools."""
    if stream:
        raise ValueError(f"the {FORMAT_NAME} chat format does not stream; send stream=false")
    offered = [] if tool_choice == "none" else list(tools or [])
    forced = forced_tool(tool_choice, offered)
    callable_tools = [{"type": "function", "function": forced}] if forced else offered
    sampling = {k: v for k, v in kwargs.items() if k in _SAMPLING and v is not None}
    text, completions = _turn(llama, render(messages, offered), callable_tools,
                              bool(forced) or tool_choice == "required",
                              max_tokens if max_tokens and max_tokens > 0 else DEFAULT_MAX_TOKENS,
                              [END, *([stop] if isinstance(stop, str) else list(stop or []))], sampling)
    content, calls = parse_reply(text) if offered else (text.strip(), [])
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    first, last = completions[0], completions[-1]
    prompt_tokens = int((first.get("usage") or {}).get("prompt_tokens") or 0)
    generated = sum(int((c.get("usage") or {}).get("completion_tokens") or 0) for c in completions)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": generated, "total_tokens": prompt_tokens + generated}
    return {"id": "chat" + str(first.get("id", "")), "object": "chat.completion",
            "created": first.get("created", int(time.time())), "model": first.get("model", ""),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if calls else last["choices"][0].get("finish_reason", "stop")}],
            "usage": usage}


def training_segments(row: dict[str, Any]) -> list[tuple[str, bool]]:
    """An HF-export row (``messages``, ``tools``) as (text, carries loss) pieces: every assistant
    turn of the conversation is learnt, with the results of earlier calls in view."""
    return list(segments(row["messages"], row["tools"]))


# The same format for transformers' chat templates (``tojson`` there is ``json.dumps`` without
# escaping; ``arguments`` may be an object or its text). The llm tier checks that it renders what
# :func:`render` renders. transformers trims the newline after a block tag, so newlines that
# follow one are written as expressions.
_NL = "{{ '\\n' }}"


def _tools_jinja() -> str:
    return ("{% for tool in tools %}{% if not loop.first %}" + _NL + "{% endif %}"
            "{{ {'name': tool.function.name, 'description': tool.function.description or '', "
            "'parameters': tool.function.parameters or {}} | tojson(separators=(',', ':')) }}{% endfor %}")


CHAT_TEMPLATE = (
    "{% if tools and (not messages or messages[0].role != 'system') %}"
    "<|im_start|>system\nTools:" + _NL + _tools_jinja() + _NL + _NL + TOOLS_FOOTER.lstrip("\n") + "<|im_end|>" + _NL
    + "{% endif %}"
    "{% for message in messages %}"
    "{% if message.role == 'assistant' %}"
    "<|im_start|>assistant" + _NL + "{% generation %}{{ message.content or '' }}"
    "{% for tc in message.tool_calls or [] %}"
    "<tool_call>{\"name\":{{ tc.function.name | tojson }},\"arguments\":"
    "{% if tc.function.arguments is string %}{{ tc.function.arguments }}"
    "{% else %}{{ tc.function.arguments | tojson(separators=(',', ':')) }}{% endif %}}</tool_call>"
    "{% endfor %}<|im_end|>{% endgeneration %}" + _NL
    + "{% elif message.role == 'system' and loop.first %}"
    "<|im_start|>system\n{{ message.content or '' }}"
    "{% if tools %}" + _NL + _NL + "Tools:" + _NL + _tools_jinja() + _NL + _NL + TOOLS_FOOTER.lstrip("\n")
    + "{% endif %}<|im_end|>" + _NL
    + "{% elif message.role == 'tool' %}"
    "<|im_start|>tool\n{{ message.content[:" + str(TOOL_RESULT_CHARS) + "] }}{% if message.content | length > "
    + str(TOOL_RESULT_CHARS) + " %}" + CUT_MARK + "{% endif %}<|im_end|>" + _NL
    + "{% else %}"
    "<|im_start|>{{ message.role }}\n{{ message.content or '' }}<|im_end|>" + _NL
    + "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant" + _NL + "{% endif %}"
)

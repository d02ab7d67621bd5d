"""The messages an OpenAI-compatible server takes and the replies it sends, as pure functions.

Requests are normalised so every server takes them (llama.cpp included); replies are reduced to
content and tool calls with ids drawn from the request's content address, so the next turn's
request has the same address in every run; structured output is checked against its schema.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

import openai
import orjson

from .base import Completion, ModelError, ToolCall
from .usage import Tally

SCHEMA_NOTE = "Reply with only a JSON object, no other text, valid against this JSON Schema:\n"
REQUIRED_NOTE = "Answer by calling one of the tools."


def normalise_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as every server takes them: an assistant message's content is "" rather than
    None (llama.cpp answers 500 to None), no empty ``tool_calls``, and tool-call arguments as
    JSON text."""
    out = []
    for message in messages:
        m = dict(message)
        if m.get("role") == "assistant":
            if m.get("content") is None:
                m["content"] = ""
            if "tool_calls" in m and not m["tool_calls"]:
                del m["tool_calls"]
            elif m.get("tool_calls"):
                m["tool_calls"] = [_call_with_text_arguments(c) for c in m["tool_calls"]]
        out.append(m)
    return out


def _call_with_text_arguments(call: dict[str, Any]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    if not isinstance(function.get("arguments"), str):
        function["arguments"] = orjson.dumps(function.get("arguments") or {}).decode()
    return {**call, "function": function}


def with_system_note(messages: list[dict[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    """``notes`` added to the leading system message (made when there is none): some chat
    templates accept a system message only in first place."""
    if not notes:
        return messages
    text = "\n".join(notes)
    if messages and messages[0].get("role") == "system":
        first = {**messages[0], "content": f"{messages[0].get('content') or ''}\n{text}".strip()}
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def check_json(content: str, validator: Any) -> tuple[str | None, str]:
    """(the JSON text, "") when ``content`` holds a document valid for ``validator`` (bare, in a
    code fence or with text around it), else (None, what is wrong)."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0].strip()
    candidates = [text]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end and (start, end) != (0, len(text) - 1):
        candidates.append(text[start:end + 1])
    problem = "the reply is empty, not a JSON object" if not text else ""
    for candidate in candidates if text else []:
        try:
            document = orjson.loads(candidate)
        except orjson.JSONDecodeError as exc:
            problem = problem or f"it is not valid JSON ({exc})"
            continue
        error = next(iter(validator.iter_errors(document)), None)
        if error is None:
            return candidate, ""
        where = "/".join(str(p) for p in error.instance_path)
        return None, f"{error.message}" + (f" at /{where}" if where else "")
    return None, problem


def parse_reply(response: Any, key: str) -> dict[str, Any]:
    choices = getattr(response, "choices", None)
    if not choices:
        raise ModelError(f"the server sent no choices: {clip(str(response))}")
    message = choices[0].message
    calls = []
    for i, call in enumerate(message.tool_calls or []):
        function = getattr(call, "function", None)
        if function is None:
            continue
        # ids derived from the request, not the server's (often random) ones: the next turn's
        # request, which quotes them, then has the same address in every run
        calls.append({"id": f"call_{key[:12]}_{i}", "name": function.name,
                      "arguments": function.arguments or "{}"})
    return {"content": message.content or "", "tool_calls": calls}


def to_completion(response: dict[str, Any], tally: Tally, key: str) -> Completion:
    calls = tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in response.get("tool_calls") or [])
    return Completion(content=response.get("content") or "", tool_calls=calls,
                      prompt_tokens=tally.prompt_tokens, completion_tokens=tally.completion_tokens,
                      cache_key=key, cached=tally.cache_hit)


def error_text(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        return str(message or exc.message)
    return str(body or exc.message)


def status_hint(status: int) -> str:
    if status in (401, 403):
        return " (check the API key in OPENAI_API_KEY)"
    if status == 404:
        return " (check the model id and that the base URL ends in /v1)"
    return ""


def clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def wire_request(model: str, seed: int | None, request: dict[str, Any], messages: list[dict[str, Any]],
                 schema: dict[str, Any] | None, fmt: str | None, choice: Any, wanted: Any) -> dict[str, Any]:
    """The keyword arguments of ``chat.completions.create`` for ``request`` asked with response
    format ``fmt`` (one of the ways probed, or None) and tool choice ``choice`` (``wanted`` is what
    the caller asked for): what the server cannot be asked for natively goes in a system note."""
    notes = []
    if schema is not None and fmt in ("json_object", "none"):
        notes.append(SCHEMA_NOTE + orjson.dumps(schema).decode())
    if wanted == "required" and choice == "auto":
        notes.append(REQUIRED_NOTE)
    wire: dict[str, Any] = {"model": model, "messages": with_system_note(messages, notes),
                            "temperature": request["temperature"]}
    if request["max_tokens"] is not None:
        wire["max_tokens"] = request["max_tokens"]
    if seed is not None:
        wire["seed"] = seed
    if request["tools"]:
        wire["tools"] = request["tools"]
        if choice is not None:
            wire["tool_choice"] = choice
    if schema is not None and fmt == "json_schema":
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", str(schema.get("title") or ""))[:64] or "response"
        wire["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": name, "schema": schema, "strict": False}}
    elif schema is not None and fmt == "json_object_schema":
        wire["response_format"] = {"type": "json_object", "schema": schema}
    elif schema is not None and fmt == "json_object":
        wire["response_format"] = {"type": "json_object"}
    return wire


def retry_after_seconds(headers: Mapping[str, str], cap: float) -> float | None:
    """The wait a 429/503 asks for (``retry-after-ms``, or ``retry-after`` in seconds or as an HTTP
    date), within [0, ``cap``]; None when it asks for none or says it unreadably."""
    try:
        if "retry-after-ms" in headers:
            return min(cap, max(0.0, float(headers["retry-after-ms"]) / 1000))
        if "retry-after" not in headers:
            return None
        value = headers["retry-after"].strip()
        try:
            seconds = float(value)
        except ValueError:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        return min(cap, max(0.0, seconds))
    except (TypeError, ValueError, OverflowError):
        return None

"""A scripted OpenAI-compatible server on 127.0.0.1, for tests that drive the real ``openai`` client.

It answers ``POST /v1/chat/completions`` from a script (a queue of :class:`Reply`, then an
optional handler function) and ``GET /v1/models``, and records every request body it received.
Replies can be faults: malformed or schema-violating JSON content, an HTTP error with
``Retry-After``, a hang longer than the client's timeout. :class:`Quirks` makes it behave like
llama-cpp-python's server (HTTP 500 for ``response_format: json_schema``, for
``tool_choice: "required"``, and for an assistant tool-call message whose content is null), to
exercise capability detection.

    with ScriptedOpenAI([json_reply({"a": 1}), http_error(429, retry_after=2)]) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        ...
        assert len(server.requests) == 2

The app is a plain ASGI callable run by uvicorn in a background thread; no FastAPI needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import uvicorn

from toolgrad.backends.preflight import PREFLIGHT_MESSAGE


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``status`` other than 200 sends an OpenAI-style error body."""

    content: str | None = ""
    tool_calls: tuple[dict[str, Any], ...] = ()  # {"name": ..., "arguments": dict | str, "id"?: ...}
    status: int = 200
    error: str = ""  # the error message when status != 200
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds to wait before answering (a hang, when past the client timeout)
    raw_body: bytes | None = None  # sent as is, instead of a generated body
    prompt_tokens: int = 11
    completion_tokens: int = 7


def _is_preflight(request: dict[str, Any]) -> bool:
    messages = request.get("messages") or []
    return (request.get("max_tokens") == 1 and len(messages) == 1
            and messages[0].get("content") == PREFLIGHT_MESSAGE)


def text_reply(content: str, **kw: Any) -> Reply:
    return Reply(content=content, **kw)


def json_reply(document: Any, **kw: Any) -> Reply:
    return Reply(content=json.dumps(document), **kw)


def malformed_json(content: str = '{"answer": "unterminated', **kw: Any) -> Reply:
    return Reply(content=content, **kw)


def tool_call_reply(*calls: tuple[str, Any], content: str | None = None, **kw: Any) -> Reply:
    """A reply calling tools: ``tool_call_reply(("get_pet", {"petId": 1}))``."""
    return Reply(content=content, tool_calls=tuple({"name": n, "arguments": a} for n, a in calls), **kw)


def http_error(status: int, message: str = "", *, retry_after: float | str | None = None, **kw: Any) -> Reply:
    headers = (("retry-after", str(retry_after)),) if retry_after is not None else ()
    return Reply(status=status, error=message or f"scripted HTTP {status}", headers=headers, **kw)


def hang(seconds: float, then: Reply | None = None) -> Reply:
    """A reply that comes only after ``seconds`` (``then``'s content, default empty)."""
    return replace(then or Reply(), delay=seconds)


@dataclass
class Quirks:
    json_schema_500: bool = False  # response_format {"type": "json_schema"} -> HTTP 500
    required_tool_choice_500: bool = False  # tool_choice "required" -> HTTP 500
    null_content_500: bool = False  # an assistant message with tool_calls and content null -> 500

    @classmethod
    def llama_cpp(cls) -> Quirks:
        """As llama-cpp-python 0.3.36's server answers (see tests/llm/test_server_quirks.py)."""
        return cls(json_schema_500=True, required_tool_choice_500=True, null_content_500=True)


Handler = Callable[[dict[str, Any]], Reply]


@dataclass
class _State:
    replies: deque[Reply] = field(default_factory=deque)
    handler: Handler | None = None
    quirks: Quirks = field(default_factory=Quirks)
    requests: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why each quirk-rejected request was refused
    exhausted: int = 0  # requests that found the script empty
    preflights: int = 0  # endpoint checks answered (never part of .requests)


class ScriptedOpenAI:
    """The server. Start with ``with`` (or :meth:`start`/:meth:`stop`); reuse with :meth:`reset`."""

    def __init__(self, script: Iterable[Reply] | Handler = (), *, quirks: Quirks | None = None,
                 model: str = "scripted-model") -> None:
        self.model = model
        self._lock = threading.RLock()  # a handler may read .requests
        self._state = _State(quirks=quirks or Quirks())
        self.script(script)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = 0

    # -- the script -------------------------------------------------------------------------

    def script(self, *replies: Iterable[Reply] | Handler | Reply) -> ScriptedOpenAI:
        """Queue replies (or lists of them); a callable becomes the handler for an empty queue."""
        with self._lock:
            for item in replies:
                if isinstance(item, Reply):
                    self._state.replies.append(item)
                elif callable(item):
                    self._state.handler = item
                else:
                    self._state.replies.extend(item)
        return self

    def reset(self, *, quirks: Quirks | None = None) -> None:
        with self._lock:
            self._state = _State(quirks=quirks or Quirks())

    @property
    def quirks(self) -> Quirks:
        return self._state.quirks

    @quirks.setter
    def quirks(self, value: Quirks) -> None:
        self._state.quirks = value

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of every chat request received, in order (refused ones included)."""
        with self._lock:
            return list(self._state.requests)

    @property
    def rejected(self) -> list[str]:
        with self._lock:
            return list(self._state.rejected)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._state.replies)

    @property
    def exhausted(self) -> int:
        return self._state.exhausted

    @property
    def preflights(self) -> int:
        """Endpoint checks (toolgrad.backends.preflight) answered; they are not in :attr:`requests`."""
        return self._state.preflights

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("the scripted server is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> ScriptedOpenAI:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, interface="asgi3", log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name=f"scripted-openai-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the scripted OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> ScriptedOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the ASGI app -----------------------------------------------------------------------------

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if method == "GET" and path.rstrip("/") == "/v1/models":
            await _send(send, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
            return
        if method != "POST" or path.rstrip("/") != "/v1/chat/completions":
            await _send(send, 404, _error(f"no route {method} {path}", "not_found"))
            return
        try:
            request = json.loads(body)
        except json.JSONDecodeError:
            await _send(send, 400, _error("request body is not JSON", "invalid_request_error"))
            return
        status, payload, headers, delay = self._answer(request)
        if delay:
            await asyncio.sleep(delay)
        with contextlib.suppress(OSError):  # the client may have given up waiting
            await _send(send, status, payload, headers)

    def _answer(self, request: dict[str, Any]) -> tuple[int, Any, tuple[tuple[str, str], ...], float]:
        with self._lock:
            state = self._state
            if _is_preflight(request):
                # the kit's endpoint check (toolgrad.backends.preflight): answered, not scripted
                state.preflights += 1
                return 200, self._completion(Reply(content="OK", prompt_tokens=3, completion_tokens=1), 0), (), 0.0
            state.requests.append(request)
            n = len(state.requests)
            refusal = _quirk_refusal(state.quirks, request)
            if refusal is not None:
                state.rejected.append(refusal[1])
                return 500, _error(refusal[0], "internal_server_error"), (), 0.0
            if state.replies:
                reply = state.replies.popleft()
            elif state.handler is not None:
                reply = state.handler(request)
            else:
                state.exhausted += 1
                return 500, _error(f"scripted server: the script is exhausted (request {n})",
                                   "internal_server_error"), (), 0.0
        if reply.raw_body is not None:
            return reply.status, reply.raw_body, reply.headers, reply.delay
        if reply.status != 200:
            return reply.status, _error(reply.error, "scripted_error"), reply.headers, reply.delay
        return 200, self._completion(reply, n), reply.headers, reply.delay

    def _completion(self, reply: Reply, n: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": call.get("id", f"call_{n}_{i}"), "type": "function",
                 "function": {"name": call["name"], "arguments": call["arguments"]
                              if isinstance(call["arguments"], str) else json.dumps(call["arguments"])}}
                for i, call in enumerate(reply.tool_calls)]
            if not reply.content:
                message["content"] = None
        return {
            "id": f"chatcmpl-{n}", "object": "chat.completion", "created": 0, "model": self.model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
            "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                      "total_tokens": reply.prompt_tokens + reply.completion_tokens},
        }


def _quirk_refusal(quirks: Quirks, request: dict[str, Any]) -> tuple[str, str] | None:
    """(the error message, which quirk) when the quirks refuse ``request``."""
    response_format = request.get("response_format") or {}
    if quirks.json_schema_500 and response_format.get("type") == "json_schema":
        return ("1 validation error: ('body', 'response_format', 'type') Input should be 'text' or "
                "'json_object'", "json_schema")
    if quirks.required_tool_choice_500 and request.get("tool_choice") == "required":
        return "", "required"
    if quirks.null_content_500 and any(
            m.get("role") == "assistant" and m.get("tool_calls") and m.get("content") is None
            for m in request.get("messages", [])):
        return "", "null_content"
    return None


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


async def _send(send: Any, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})

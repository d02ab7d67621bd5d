"""llama-cpp-python's OpenAI-compatible server with two chat formats for tool calls:
:data:`~toolgrad.train.chat_format.FORMAT_NAME` (``toolgrad-tools``, the format ``toolgrad train``
teaches: tool results shown, calls in ``<tool_call>`` tags) and the stock
``chatml-function-calling`` (the floor's), with a request's ``max_tokens`` honoured when it
carries tools.

llama-cpp-python 0.3's ``chatml-function-calling`` handler passes ``max_tokens=None`` to every
completion it makes for a request with tools and ``tool_choice: "auto"``: the text reply and each
call's arguments are generated until the context window is full. A small model that rambles
then holds the one-threaded server for minutes (in CI: 3,545 tokens, 250-300 s for one request,
past the client's timeout, retried, and again). This launcher registers the same handler under
the same name with the request's ``max_tokens`` applied to each completion it makes, then runs the
stock server with the stock flags: ``python -m toolgrad.train.llama_server --model M.gguf
--chat_format chatml-function-calling ...``. The prompts are unchanged.

Each completion gets the request's ``max_tokens``, but at least :data:`NAME_TOKENS`: one of them
is the grammar-bound choice of the next tool's name (at most 64 characters in OpenAI's API), which
a small limit must not cut. A request's reply is then bounded by about three times that (the text
or the arguments of each call, plus the choice of what comes next).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

HANDLER_NAME = "chatml-function-calling"
NAME_TOKENS = 64  # a tool name is at most 64 characters, so at most 64 tokens


class _Completer(Protocol):
    def create_completion(self, *args: Any, **kwargs: Any) -> Any: ...


class BoundedLlama:
    """A ``llama_cpp.Llama`` seen through one request: ``create_completion`` without a token limit
    gets ``max(max_tokens, NAME_TOKENS)``; everything else is the model's own."""

    def __init__(self, llama: _Completer, max_tokens: int) -> None:
        self._llama = llama
        self._max_tokens = max(max_tokens, NAME_TOKENS)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("max_tokens") is None or kwargs["max_tokens"] <= 0:
            kwargs["max_tokens"] = self._max_tokens
        return self._llama.create_completion(*args, **kwargs)


def bounded(handler: Any) -> Any:
    """``handler`` (a llama-cpp-python chat completion handler) with the request's ``max_tokens``
    applied to every completion it makes; requests without one are passed through unchanged."""

    def bounded_handler(*, llama: Any, max_tokens: int | None = None, **kwargs: Any) -> Any:
        if max_tokens is not None and max_tokens > 0:
            llama = BoundedLlama(llama, max_tokens)
        return handler(llama=llama, max_tokens=max_tokens, **kwargs)

    return bounded_handler


def main() -> None:
    from llama_cpp import llama_chat_format
    from llama_cpp.server.__main__ import main as serve

    from .chat_format import FORMAT_NAME, chat_handler

    registry = llama_chat_format.LlamaChatCompletionHandlerRegistry()
    registry.register_chat_completion_handler(HANDLER_NAME, bounded(llama_chat_format.chatml_function_calling),
                                              overwrite=True)
    registry.register_chat_completion_handler(FORMAT_NAME, cast(Any, chat_handler), overwrite=True)
    serve()


if __name__ == "__main__":
    main()

"""The one interface every model backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class ModelError(Exception):
    """The model could not give a usable answer (after retries and repairs), or a
    ``--replay-only`` run missed the cache. Stages turn this into a recorded failure."""


class CacheMiss(ModelError):
    """A ``--replay-only`` run asked for an exchange the cache does not hold. Not a stage
    failure: the run stops, because its output could no longer match the recorded one."""


class EndpointError(ModelError):
    """The endpoint itself failed: no answer after the retries (connection, timeout, 5xx, 429),
    or a refusal no request can get past (a wrong key, model or URL: 401, 403, 404). Not a
    stage failure either: every later request would fail the same way, so runs stop (resumably)
    and say why."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model wrote it


@dataclass(frozen=True, slots=True)
class Completion:
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_key: str = ""  # content address of the exchange (request + response)
    cached: bool = False  # served from the record/replay cache (no model call made)


class ChatModel(Protocol):
    model: str
    base_url: str

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        json_schema: dict[str, Any] | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> Completion:
        """One chat completion. With ``json_schema`` the content is JSON valid against it
        (structured output where the server supports it, else JSON mode plus validation and a
        bounded number of repair attempts); raises :class:`ModelError` when that fails."""
        ...

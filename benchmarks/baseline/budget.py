"""What one seed spends on a model, and the cap both generators of the comparison get.

*Model calls* here means every chat completion a generator asked for (answered, refused or
failed; from the server or the record/replay cache) plus every repair turn the client sent
because structured output came back invalid: the completions the model was asked to produce.
It is :attr:`Usage.calls` + :attr:`Usage.repairs` of :class:`~toolgrad.backends.openai.OpenAIChat`,
the same in a recorded run and its replay. *HTTP requests* (:attr:`Usage.requests`) adds what
the transport cost on top (retries, capability probes) and is 0 when replayed from the cache.
Tokens are the server's own ``usage`` over every turn.

:class:`BudgetedChat` is one seed's view of a shared client: it counts that seed only, and
once ``cap`` model calls are spent it starts no new completion (it raises
:class:`BudgetSpent`, a :class:`~toolgrad.backends.base.ModelError`, which both generators record
as a failed stage). A completion already started may finish past the cap by its repair turns
(at most the client's ``repair_attempts``). The same class caps the answer-first loop (through
:class:`~toolgrad.policies.model.policy.LLMPolicy`) and the DFSDT search, so "the same budget" is one rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolgrad.backends.base import ChatModel, Completion, ModelError
from toolgrad.backends.usage import Usage


class BudgetSpent(ModelError):
    """The seed's model-call budget is spent: no completion was asked for."""


@dataclass(frozen=True, slots=True)
class Spent:
    """One seed's spending (see the module docstring for what each figure counts)."""

    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_requests: int = 0

    @classmethod
    def of(cls, usage: Usage) -> Spent:
        return cls(model_calls=usage.calls + usage.repairs, prompt_tokens=usage.prompt_tokens,
                   completion_tokens=usage.completion_tokens, http_requests=usage.requests)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class BudgetedChat:
    """A :class:`ChatModel` counting one seed's calls on ``chat`` (its own scoped view when the
    client has one), refusing new ones once ``cap`` (None: no cap) model calls are spent.
    Deliberately without ``scoped()``: a policy given it keeps using this very view."""

    def __init__(self, chat: ChatModel, cap: int | None = None) -> None:
        scoped = getattr(chat, "scoped", None)
        self._chat: ChatModel = scoped() if callable(scoped) else chat
        self.cap = cap
        self.model: str = self._chat.model
        self.base_url: str = self._chat.base_url
        self._own = Usage()  # for a chat model that keeps no usage of its own (a test double)

    def complete(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
                 tool_choice: Any = None, json_schema: dict[str, Any] | None = None, temperature: float = 0.0,
                 max_tokens: int | None = None) -> Completion:
        if self.cap is not None and self.spent().model_calls >= self.cap:
            raise BudgetSpent(f"the seed's budget of {self.cap} model calls is spent")
        try:
            completion = self._chat.complete(messages, tools=tools, tool_choice=tool_choice, json_schema=json_schema,
                                             temperature=temperature, max_tokens=max_tokens)
        except ModelError:
            self._count(None)
            raise
        self._count(completion)
        return completion

    def usage(self) -> Usage:
        """What this seed spent: the client's own count where it keeps one."""
        usage = getattr(self._chat, "usage", None)
        if callable(usage):
            counted: Usage = usage()
            return counted
        return self._own

    def spent(self) -> Spent:
        return Spent.of(self.usage())

    def _count(self, completion: Completion | None) -> None:
        if callable(getattr(self._chat, "usage", None)):
            return
        own = self._own
        keys = own.cache_keys + ((completion.cache_key,) if completion and completion.cache_key else ())
        self._own = Usage(calls=own.calls + 1,
                          prompt_tokens=own.prompt_tokens + (completion.prompt_tokens if completion else 0),
                          completion_tokens=own.completion_tokens + (completion.completion_tokens if completion else 0),
                          requests=own.requests + 1, failures=own.failures + (completion is None),
                          cache_keys=tuple(dict.fromkeys(keys)))

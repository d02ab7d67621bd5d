"""The :class:`ChatModel` for OpenAI-compatible servers, through the official ``openai`` client.

What a caller may rely on:

* **Retries** on 408/409/429, 5xx, timeouts and connection errors, with exponential backoff and a
  jitter drawn from the request's content address (no global RNG); ``Retry-After`` is honoured.
* **Capability detection, per instance.** Structured output is asked for in the best way the
  server takes, probed in order: ``json_schema``, then ``json_object`` with a ``schema`` (which
  llama.cpp compiles to a grammar), then plain ``json_object``, then nothing (the schema goes in
  a system note). ``tool_choice="required"`` falls back to ``"auto"`` plus a system note. A way is
  given up when the server rejects it (a 4xx, a 5xx naming it, or two 5xx in a row) and a later
  way then works; what works is remembered.
* **Valid structured output or a ModelError.** With ``json_schema`` the reply is parsed and
  validated locally; a bad one gets up to ``repair_attempts`` repair turns naming the error.
* **Record/replay.** With a :class:`~toolgrad.backends.cache.ResponseCache`, every answer (and every
  failure that depends on the request alone: output still invalid after the repairs, a 400/413/422
  such as a prompt past the context window) is stored under the content address of the request
  as the caller made it, so a rerun makes no request and returns the same completions. Tool-call
  ids are drawn from that address too, so the next turn's request has the same address in every
  run. A ``replay_only`` miss raises :class:`CacheMiss`.
* **Accounting.** :meth:`OpenAIChat.usage` counts calls, tokens, HTTP requests and cache hits;
  :meth:`OpenAIChat.scoped` gives a view with its own counters (one per sample, thread-safe).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import jsonschema_rs
import openai

from toolgrad.sampling import stable_unit

from .base import CacheMiss, Completion, EndpointError, ModelError
from .cache import ResponseCache, request_key
from .messages import (
    check_json,
    clip,
    error_text,
    normalise_messages,
    parse_reply,
    retry_after_seconds,
    status_hint,
    to_completion,
    wire_request,
)
from .usage import Meter, Tally, Usage

log = logging.getLogger(__name__)

ResponseFormat = Literal["auto", "json_schema", "json_object", "none"]
# The ways of asking for structured output, best first. "json_object_schema" is
# {"type": "json_object", "schema": ...}; "none" sends no response_format at all.
FORMATS = ("json_schema", "json_object_schema", "json_object", "none")
PINNED = {"json_schema": "json_schema", "json_object": "json_object_schema", "none": "none"}
RETRY_STATUSES = frozenset({408, 409, 429})
CONFIG_ERRORS = frozenset({401, 403, 404})  # a wrong key, model or URL: never blamed on a capability
# refusals that depend on the request alone (e.g. a prompt past the context window): recorded in
# the cache like invalid output, so a replay fails where the recorded run did
RECORDED_REFUSALS = frozenset({400, 413, 422})
PROBE_5XX_LIMIT = 2  # consecutive 5xx that count as "this server does not take that request"
FORMAT_WORDS = ("response_format", "json_schema", "json_object")
TOOL_CHOICE_WORDS = ("tool_choice", "required")



class _Refused(ModelError):
    """The server refused the request with a status that retrying will not change."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class _Rejected(Exception):
    """The server would not take a request in this form (a capability probe failed)."""


class OpenAIChat:
    """A :class:`~toolgrad.backends.base.ChatModel` over an OpenAI-compatible ``base_url``."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        cache: ResponseCache | None = None,
        replay_only: bool = False,
        response_format: ResponseFormat = "auto",
        repair_attempts: int = 2,
        seed: int | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if replay_only and cache is None:
            raise ValueError("replay_only needs a cache to replay from")
        if response_format != "auto" and response_format not in PINNED:
            raise ValueError(f"response_format must be auto, json_schema, json_object or none, not {response_format!r}")
        self.model = model
        self.cache = cache
        self.replay_only = replay_only
        self.response_format = response_format
        self.repair_attempts = repair_attempts
        self.max_retries = max_retries
        self.seed = seed
        self.backoff_base, self.backoff_max, self.max_retry_after = backoff_base, backoff_max, max_retry_after
        self._sleep = sleep
        key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        # an empty base_url means the client's default ($OPENAI_BASE_URL, else OpenAI's API)
        self._client = openai.OpenAI(base_url=base_url or None, api_key=key, timeout=timeout, max_retries=0)
        self.base_url = str(self._client.base_url).rstrip("/")
        self._meter = Meter()
        # capabilities: the format that worked (None: not probed yet), formats given up on,
        # and whether tool_choice="required" works (None: not probed yet)
        self._format: str | None = PINNED.get(response_format)
        self._rejected: set[str] = set()
        self._required: bool | None = None
        self._probe_lock = threading.Lock()
        self._validators: dict[str, Any] = {}
        self._validators_lock = threading.Lock()

    # -- public surface ---------------------------------------------------------------------

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
        return self._complete(messages, tools, tool_choice, json_schema, temperature, max_tokens, (self._meter,))

    def usage(self, *, reset: bool = False) -> Usage:
        """What this client spent (over all its scoped views), optionally resetting the count."""
        return self._meter.snapshot(reset)

    def scoped(self) -> ScopedChat:
        """A view sharing this client, its cache and capabilities, with counters of its own."""
        return ScopedChat(self, (self._meter,))

    def capabilities(self) -> dict[str, Any]:
        """What detection found so far (for logs and run summaries)."""
        return {"structured_output": self._format, "rejected": sorted(self._rejected),
                "tool_choice_required": self._required}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIChat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one call: cache, then the server -----------------------------------------------------

    def _complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, tool_choice: Any,
        json_schema: dict[str, Any] | None, temperature: float, max_tokens: int | None,
        meters: tuple[Meter, ...],
    ) -> Completion:
        request: dict[str, Any] = {
            "model": self.model, "messages": normalise_messages(messages), "tools": tools or None,
            "tool_choice": tool_choice if tools else None, "json_schema": json_schema,
            "temperature": float(temperature), "max_tokens": max_tokens, "seed": self.seed,
        }
        key = request_key(request)
        tally = Tally(key)
        try:
            entry = self.cache.get(key) if self.cache is not None else None
            if entry is not None:
                tally.cache_hit = True
            elif self.replay_only:
                raise CacheMiss(
                    f"cache miss for key {key} in --replay-only mode: no recorded answer for this "
                    f"request to {self.model!r} ({len(messages)} messages); record it first by running "
                    f"without --replay-only against a server")
            else:
                entry = self._exchange(request, tally)
                if self.cache is not None:
                    self.cache.put(key, entry)
            tally.prompt_tokens = int(entry.get("prompt_tokens", 0))
            tally.completion_tokens = int(entry.get("completion_tokens", 0))
            tally.repairs = int(entry.get("repairs", 0))
            if entry.get("error"):
                raise ModelError(str(entry["error"]))
            return to_completion(entry["response"], tally, key)
        except ModelError:
            tally.failed = True
            raise
        finally:
            for meter in meters:
                meter.add(tally)

    def _exchange(self, request: dict[str, Any], tally: Tally) -> dict[str, Any]:
        """Ask the server, repairing invalid structured output; the cache entry for the answer."""
        messages = list(request["messages"])
        schema = request["json_schema"]
        validator = self._validator(schema) if schema is not None else None
        tokens = [0, 0]
        repairs = 0
        while True:
            try:
                response, fmt, tool_choice = self._send(request, messages, tally)
            except _Refused as exc:
                if exc.status not in RECORDED_REFUSALS:
                    raise
                return {"request": request, "prompt_tokens": tokens[0], "completion_tokens": tokens[1],
                        "repairs": repairs, "response": None,
                        "error": f"the server refused the request: {exc.detail}"}
            if response.usage is not None:
                tokens[0] += response.usage.prompt_tokens or 0
                tokens[1] += response.usage.completion_tokens or 0
            tally.prompt_tokens, tally.completion_tokens = tokens
            reply = parse_reply(response, tally.key)
            entry = {"request": request, "prompt_tokens": tokens[0], "completion_tokens": tokens[1],
                     "repairs": repairs, "wire": {"response_format": fmt, "tool_choice": tool_choice}}
            if validator is None or reply["tool_calls"]:
                return {**entry, "response": reply}
            text, problem = check_json(reply["content"], validator)
            if text is not None:
                return {**entry, "response": {**reply, "content": text}}
            if repairs >= self.repair_attempts:
                return {**entry, "response": None, "error": (
                    f"no valid structured output after {repairs} repair turn(s): {problem}; "
                    f"last reply: {clip(reply['content'])!r}")}
            repairs += 1
            messages += [{"role": "assistant", "content": reply["content"]},
                         {"role": "user", "content": f"That reply is not valid: {problem}. "
                                                     "Answer again with only the corrected JSON object."}]

    # -- capability detection -------------------------------------------------------------------

    def _send(self, request: dict[str, Any], messages: list[dict[str, Any]],
              tally: Tally) -> tuple[Any, str | None, Any]:
        schema, tool_choice = request["json_schema"], request["tool_choice"]
        unknown = (schema is not None and self._format is None) or (tool_choice == "required"
                                                                      and self._required is None)
        if not unknown:
            return self._send_known(request, messages, tally)
        with self._probe_lock:  # one thread probes; the others then use what it found
            return self._send_known(request, messages, tally)

    def _send_known(self, request: dict[str, Any], messages: list[dict[str, Any]],
                    tally: Tally) -> tuple[Any, str | None, Any]:
        schema, wanted = request["json_schema"], request["tool_choice"]
        formats: list[str | None] = [None]
        if schema is not None:
            formats = [self._format] if self._format else [f for f in FORMATS if f not in self._rejected]
        choices = [wanted]
        if wanted == "required":
            choices = {None: ["required", "auto"], True: ["required"], False: ["auto"]}[self._required]
        given_up: list[str] = []
        required_rejected = False
        last = ""
        for fmt in formats:
            for choice in choices:
                if required_rejected and choice == "required":
                    continue
                detecting = fmt is not None and self._format is None
                probing_format = detecting and fmt != "none"  # "none" is the last resort: no probe
                probing_choice = choice == "required" and self._required is None
                words = (FORMAT_WORDS if probing_format else ()) + (TOOL_CHOICE_WORDS if probing_choice else ())
                wire = wire_request(self.model, self.seed, request, messages, schema, fmt, choice, wanted)
                try:
                    response = self._post(wire, tally, words)
                except _Rejected as exc:
                    last = str(exc)
                    text = last.lower()
                    blame_choice = probing_choice and (not probing_format or (
                        "tool_choice" in text or not any(w in text for w in FORMAT_WORDS)))
                    log.info("%s: %s rejected (%s)", self.base_url,
                             "tool_choice=required" if blame_choice else f"response format {fmt}", clip(last))
                    if blame_choice:
                        required_rejected = True
                        continue
                    given_up.append(str(fmt))
                    break
                # a probe runs under _probe_lock (see _send), so these updates do not race
                if detecting:
                    self._format = fmt
                    self._rejected.update(given_up)
                if probing_choice or required_rejected:
                    self._required = not required_rejected
                return response, fmt, choice
        raise ModelError(f"{self.base_url} rejected every way of asking for this completion "
                         f"(tried response formats {formats}, tool_choice {choices}): {last}")

    # -- one HTTP exchange, with retries --------------------------------------------------------

    def _post(self, wire: dict[str, Any], tally: Tally, probe_words: tuple[str, ...]) -> Any:
        """The server's response. Raises _Rejected when probing and the server will not take
        the request as it is; ModelError when it gives no answer after the retries."""
        server_errors = 0
        last = ""
        for attempt in range(self.max_retries + 1):
            tally.requests += 1
            delay = self._backoff(tally.key, attempt)
            try:
                return self._client.chat.completions.create(**wire)
            except openai.APIStatusError as exc:
                status, text = exc.status_code, error_text(exc)
                last = f"HTTP {status}: {clip(text)}"
                retryable = status in RETRY_STATUSES or status >= 500
                if probe_words and status not in CONFIG_ERRORS:
                    named = any(w in text.lower() for w in probe_words)
                    server_errors = server_errors + 1 if status >= 500 else 0
                    if (not retryable) or (status >= 500 and (named or server_errors >= PROBE_5XX_LIMIT)):
                        raise _Rejected(last) from exc
                if status in CONFIG_ERRORS:
                    raise EndpointError(f"{self.base_url} answered {last}{status_hint(status)}") from exc
                if not retryable:
                    raise _Refused(f"{self.base_url} answered {last}{status_hint(status)}", status, last) from exc
                retry_after = retry_after_seconds(exc.response.headers, self.max_retry_after)
                delay = delay if retry_after is None else retry_after
            except openai.APITimeoutError:
                last = "timed out"
            except openai.APIConnectionError as exc:
                last = f"connection failed ({exc.__cause__ or exc}); is the server running?"
            except openai.APIError as exc:
                raise ModelError(f"{self.base_url} sent an unusable response: {exc}") from exc
            if attempt < self.max_retries:
                tally.retries += 1
                log.info("%s: %s; retrying in %.2fs", self.base_url, last, delay)
                self._sleep(delay)
        raise EndpointError(f"{self.base_url}: no answer after {self.max_retries + 1} attempts: {last}")

    def _backoff(self, key: str, attempt: int) -> float:
        # jitter from the request's address: concurrent clients spread out, reruns wait alike
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        return delay * (0.75 + 0.5 * stable_unit("backoff", key, attempt))

    def _validator(self, schema: dict[str, Any]) -> Any:
        key = request_key(schema)
        with self._validators_lock:
            if key not in self._validators:
                try:
                    self._validators[key] = jsonschema_rs.validator_for(schema)
                except (ValueError, jsonschema_rs.ValidationError) as exc:
                    raise ModelError(f"the JSON schema asked for is not a valid schema: {exc}") from exc
            return self._validators[key]


class ScopedChat:
    """A :class:`ChatModel` sharing an :class:`OpenAIChat`, counting its own calls as well."""

    def __init__(self, parent: OpenAIChat, meters: tuple[Meter, ...]) -> None:
        self._parent = parent
        self._meter = Meter()
        self._meters = (*meters, self._meter)

    @property
    def model(self) -> str:
        return self._parent.model

    @property
    def base_url(self) -> str:
        return self._parent.base_url

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
        return self._parent._complete(messages, tools, tool_choice, json_schema, temperature, max_tokens,
                                      self._meters)

    def usage(self, *, reset: bool = False) -> Usage:
        return self._meter.snapshot(reset)

    def scoped(self) -> ScopedChat:
        return ScopedChat(self._parent, self._meters)

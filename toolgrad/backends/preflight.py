"""Before a long run: is the model endpoint there, does it serve the model, and does it answer?

``check_endpoint`` asks ``GET {base_url}/models`` and then one tiny chat completion (the message
:data:`PREFLIGHT_MESSAGE`, one token), so a wrong URL, key or model stops ``generate`` and
``eval`` within seconds with the cause, instead of every seed or trial failing after its retries.
"""

from __future__ import annotations

import os

import openai

from .base import EndpointError

PREFLIGHT_MESSAGE = "Reply with OK."  # test servers answer this request without using their script
CONNECT_TIMEOUT_S = 5.0
REPLY_TIMEOUT_S = 120.0  # a local server may load the model on its first request
SHOWN_MODELS = 10


def check_endpoint(base_url: str, model: str, *, api_key: str | None = None,
                   connect_timeout: float = CONNECT_TIMEOUT_S, reply_timeout: float = REPLY_TIMEOUT_S) -> None:
    """Raise :class:`EndpointError` with the cause when ``base_url`` cannot serve ``model``.

    A server without ``/models`` (404) is not an error; one that lists models without ``model``
    is (the message names what it serves)."""
    key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
    timeout = openai.Timeout(reply_timeout, connect=connect_timeout)
    with openai.OpenAI(base_url=base_url or None, api_key=key, timeout=timeout, max_retries=0) as client:
        where = str(client.base_url).rstrip("/")
        try:
            served = [m.id for m in client.models.list()]
        except openai.NotFoundError:
            served = []
        except openai.APIError as exc:
            raise EndpointError(_cause(where, "GET /models", exc)) from None
        if served and model not in served:
            shown = ", ".join(served[:SHOWN_MODELS]) + (" ..." if len(served) > SHOWN_MODELS else "")
            raise EndpointError(f"{where} does not serve the model {model!r} (it serves: {shown}); check --model")
        try:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": PREFLIGHT_MESSAGE}],
                                           max_tokens=1, temperature=0.0)
        except openai.APIError as exc:
            raise EndpointError(_cause(where, "a one-token chat request", exc)) from None


def _cause(where: str, request: str, exc: openai.APIError) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return f"{where} did not answer {request} in time; is the server overloaded or still loading?"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach {where} ({exc.__cause__ or exc}); is the server running? check --base-url"
    if isinstance(exc, openai.APIStatusError):
        hint = {401: "; check the API key in OPENAI_API_KEY", 403: "; check the API key in OPENAI_API_KEY",
                404: "; check --model and that --base-url ends in /v1"}.get(exc.status_code, "")
        return f"{where} answered {request} with HTTP {exc.status_code}: {str(exc.message)[:300]}{hint}"
    return f"{where} sent an unusable response to {request}: {exc}"

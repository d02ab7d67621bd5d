"""Pin down how llama-cpp-python's server (0.3.36, chatml-function-calling) behaves.

These are the facts the kit's OpenAI backend is built around. If an upgrade changes one of
them, the test says which assumption broke: e.g. if ``json_schema`` starts working, capability
detection should pick it up and the 5xx test here should be updated, not the backend.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import jsonschema_rs
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion

pytestmark = pytest.mark.llm


class LocalLLMServer(Protocol):
    """What this module uses of the ``llm_server`` fixture (see conftest.py)."""

    base_url: str
    model: str
    api_key: str
    request_timeout_s: float


GET_PET_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_pet_by_id",
        "description": "Find a pet in the store by its numeric id.",
        "parameters": {
            "type": "object",
            "properties": {"petId": {"type": "integer", "description": "id of the pet"}},
            "required": ["petId"],
        },
    },
}

PET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "status": {"type": "string", "enum": ["available", "pending", "sold"]},
    },
    "required": ["name", "age", "status"],
}


def _chat(client: OpenAI, **request: Any) -> ChatCompletion:
    # Untyped on purpose: these requests carry shapes the openai stubs reject (a "schema" key in
    # json_object, tool_choice "required" to provoke a 500, content None) but servers receive.
    return client.chat.completions.create(**request)


def _schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    return [error.message for error in jsonschema_rs.validator_for(schema).iter_errors(instance)]


@pytest.fixture(scope="module")
def client(llm_server: LocalLLMServer) -> OpenAI:
    # max_retries=0: the client retries 5xx by default, which would triple the cost of the
    # tests that expect one and hide how the server really answers.
    return OpenAI(
        base_url=llm_server.base_url,
        api_key=llm_server.api_key,
        timeout=llm_server.request_timeout_s,
        max_retries=0,
    )


def test_temperature_zero_is_deterministic(client: OpenAI, llm_server: LocalLLMServer) -> None:
    request: dict[str, Any] = {
        "model": llm_server.model,
        "messages": [{"role": "user", "content": "Name three animals that live in the sea."}],
        "temperature": 0,
        "max_tokens": 48,
    }
    first = _chat(client, **request).choices[0].message.content
    second = _chat(client, **request).choices[0].message.content
    assert first, "temperature-0 completion came back empty"
    assert first == second, (
        "two identical temperature-0 requests gave different text; the kit's response cache and "
        f"replay tests assume greedy decoding is deterministic:\n{first!r}\n!=\n{second!r}"
    )


def test_tool_choice_naming_a_function_returns_a_parseable_call(
    client: OpenAI, llm_server: LocalLLMServer
) -> None:
    response = _chat(
        client,
        model=llm_server.model,
        messages=[{"role": "user", "content": "Show me the pet with id 42."}],
        tools=[GET_PET_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_pet_by_id"}},
        temperature=0,
        max_tokens=64,
    )
    message = response.choices[0].message
    assert message.tool_calls, f"a named tool_choice must force a tool call, got text {message.content!r}"
    call = message.tool_calls[0]
    assert call.type == "function", f"expected a function tool call, got {call.type!r}"
    assert call.function.name == "get_pet_by_id", f"forced the wrong function: {call.function.name!r}"
    try:
        arguments = json.loads(call.function.arguments)
    except json.JSONDecodeError as exc:
        pytest.fail(f"tool-call arguments are not JSON ({exc}): {call.function.arguments!r}")
    errors = _schema_errors(GET_PET_TOOL["function"]["parameters"], arguments)
    assert not errors, (
        "a named tool_choice is grammar-constrained to the parameters schema, so the arguments "
        f"should validate; got {arguments!r}: {errors}"
    )


def test_json_object_with_schema_constrains_the_output(client: OpenAI, llm_server: LocalLLMServer) -> None:
    response = _chat(
        client,
        model=llm_server.model,
        messages=[
            {"role": "user", "content": "Describe a pet as JSON: a cat called Tom, 3 years old, available."}
        ],
        # llama.cpp's extension: json_object plus a schema compiles to a grammar. The openai
        # client passes the extra "schema" key through unchanged.
        response_format={"type": "json_object", "schema": PET_SCHEMA},
        temperature=0,
        max_tokens=96,
    )
    content = response.choices[0].message.content or ""
    try:
        document = json.loads(content)
    except json.JSONDecodeError as exc:
        pytest.fail(f"json_object + schema should yield JSON, got ({exc}): {content!r}")
    errors = _schema_errors(PET_SCHEMA, document)
    assert not errors, (
        "json_object + schema is the kit's structured-output fallback on llama.cpp; the output "
        f"must match the schema, got {document!r}: {errors}"
    )


def _assert_server_error(exc_info: pytest.ExceptionInfo[openai.APIStatusError], feature: str) -> None:
    assert exc_info.value.status_code >= 500, (
        f"{feature} was expected to fail with a 5xx on this server (the kit detects that and "
        f"falls back); got HTTP {exc_info.value.status_code}"
    )


def test_tool_choice_required_fails_with_a_server_error(client: OpenAI, llm_server: LocalLLMServer) -> None:
    with pytest.raises(openai.APIStatusError) as exc_info:
        _chat(
            client,
            model=llm_server.model,
            messages=[{"role": "user", "content": "Show me the pet with id 42."}],
            tools=[GET_PET_TOOL],
            tool_choice="required",
            temperature=0,
            max_tokens=64,
        )
    _assert_server_error(exc_info, 'tool_choice="required"')


def test_json_schema_response_format_fails_with_a_server_error(
    client: OpenAI, llm_server: LocalLLMServer
) -> None:
    with pytest.raises(openai.APIStatusError) as exc_info:
        _chat(
            client,
            model=llm_server.model,
            messages=[{"role": "user", "content": "Describe a pet as JSON."}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "pet", "schema": PET_SCHEMA, "strict": True},
            },
            temperature=0,
            max_tokens=96,
        )
    _assert_server_error(exc_info, 'response_format {"type": "json_schema"}')


def _history_with_tool_call(content: str | None) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Show me the pet with id 42."},
        {
            "role": "assistant",
            "content": content,
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "get_pet_by_id", "arguments": '{"petId": 42}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": '{"id": 42, "name": "Rex", "status": "sold"}'},
    ]


def test_assistant_tool_call_message_needs_empty_string_content(
    client: OpenAI, llm_server: LocalLLMServer
) -> None:
    request: dict[str, Any] = {
        "model": llm_server.model,
        "tools": [GET_PET_TOOL],
        "temperature": 0,
        "max_tokens": 32,
    }
    answered = _chat(client, messages=_history_with_tool_call(""), **request)
    assert answered.choices, 'an assistant tool-call message with content "" must be accepted'
    with pytest.raises(openai.APIStatusError) as exc_info:
        _chat(client, messages=_history_with_tool_call(None), **request)
    _assert_server_error(exc_info, "an assistant tool-call message with content None")


def _recording_model(decision: str) -> tuple[Any, list[int | None]]:
    """A stand-in ``llama_cpp.Llama`` for the chat handler: it answers ``decision`` (``message:`` or
    ``functions.NAME``) when asked what comes next, ``{}`` or text otherwise, and records the
    ``max_tokens`` of every completion it is asked for."""
    asked: list[int | None] = []

    class Recorder:
        verbose = False

        def create_completion(self, prompt: str, **kwargs: Any) -> Any:
            asked.append(kwargs.get("max_tokens"))
            choosing = prompt.endswith("<|im_start|>assistant\n") or "functions ::=" in str(kwargs.get("grammar", ""))
            text = decision if len(asked) == 1 else ("<|im_end|>" if choosing and len(asked) > 2 else "{}")
            return {"id": "c", "object": "text_completion", "created": 0, "model": "m",
                    "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    return Recorder(), asked


@pytest.mark.parametrize("decision", ["message:", "functions.get_pet_by_id"])
def test_stock_handler_drops_max_tokens_and_the_launcher_applies_it(decision: str) -> None:
    """llama-cpp-python's ``chatml-function-calling`` generates a text reply or a call's arguments
    with ``max_tokens=None`` (until the context is full: minutes for a rambling small model);
    ``toolgrad.train.llama_server`` registers the same handler with the request's limit applied."""
    chat_format = pytest.importorskip("llama_cpp.llama_chat_format")
    from toolgrad.train.llama_server import NAME_TOKENS, bounded

    request: dict[str, Any] = {"messages": [{"role": "user", "content": "Tell me a long story."}],
                               "tools": [GET_PET_TOOL], "tool_choice": "auto", "max_tokens": 12}
    stock, stock_asked = _recording_model(decision)
    chat_format.chatml_function_calling(llama=stock, **request)
    assert None in stock_asked, f"upstream now honours max_tokens ({stock_asked}): the launcher can go"
    fixed, fixed_asked = _recording_model(decision)
    bounded(chat_format.chatml_function_calling)(llama=fixed, **request)
    assert len(fixed_asked) == len(stock_asked) and all(asked == NAME_TOKENS for asked in fixed_asked), (
        f"each completion gets max(max_tokens=12, {NAME_TOKENS})", fixed_asked)

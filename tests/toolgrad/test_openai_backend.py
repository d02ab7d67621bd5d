"""OpenAIChat through the real ``openai`` client against the scripted server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted_server import (
    Quirks,
    Reply,
    ScriptedOpenAI,
    hang,
    http_error,
    json_reply,
    malformed_json,
    text_reply,
    tool_call_reply,
)
from toolgrad.backends.base import ModelError
from toolgrad.backends.cache import ResponseCache
from toolgrad.backends.messages import check_json, normalise_messages
from toolgrad.backends.openai import CacheMiss, OpenAIChat

PET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
ASK = [{"role": "user", "content": "Describe a pet as JSON."}]
GET_PET = {"type": "function", "function": {
    "name": "get_pet", "description": "Find a pet by id.",
    "parameters": {"type": "object", "properties": {"petId": {"type": "integer"}}, "required": ["petId"]}}}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_chat(server: ScriptedOpenAI, sleeps: Sleeps | None = None, **kw: Any) -> OpenAIChat:
    kw.setdefault("timeout", 5.0)
    return OpenAIChat(server.model, server.base_url, api_key="sk-test", sleep=sleeps if sleeps is not None else Sleeps(),
                      **kw)


# -- structured output and capability detection ------------------------------------------------


def test_structured_output_uses_json_schema_when_the_server_takes_it(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(json_reply({"name": "Tom", "age": 3}, prompt_tokens=20, completion_tokens=9))
    chat = make_chat(scripted_openai)
    completion = chat.complete(ASK, json_schema=PET_SCHEMA, max_tokens=50)
    assert json.loads(completion.content) == {"name": "Tom", "age": 3}
    assert (completion.prompt_tokens, completion.completion_tokens, completion.cached) == (20, 9, False)
    (request,) = scripted_openai.requests
    assert request["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "response", "schema": PET_SCHEMA, "strict": False}}
    assert request["max_tokens"] == 50 and request["temperature"] == 0.0
    assert chat.capabilities()["structured_output"] == "json_schema"
    usage = chat.usage()
    assert (usage.calls, usage.requests, usage.prompt_tokens, usage.completion_tokens) == (1, 1, 20, 9)
    assert usage.cache_keys == (completion.cache_key,)


def test_falls_back_to_json_object_with_schema_when_json_schema_gets_a_500(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.reset(quirks=Quirks.llama_cpp())
    scripted_openai.script(json_reply({"name": "Tom", "age": 3}), json_reply({"name": "Rex", "age": 5}))
    chat = make_chat(scripted_openai)
    assert json.loads(chat.complete(ASK, json_schema=PET_SCHEMA).content)["name"] == "Tom"
    first, second = scripted_openai.requests
    assert first["response_format"]["type"] == "json_schema"
    assert second["response_format"] == {"type": "json_object", "schema": PET_SCHEMA}
    assert chat.capabilities() == {"structured_output": "json_object_schema", "rejected": ["json_schema"],
                                   "tool_choice_required": None}
    # remembered: the next call goes straight to the format that works
    assert json.loads(chat.complete([*ASK, {"role": "user", "content": "again"}], json_schema=PET_SCHEMA).content)
    assert len(scripted_openai.requests) == 3
    assert scripted_openai.requests[2]["response_format"]["type"] == "json_object"
    assert chat.usage().retries == 0


def test_unexplained_500s_reject_a_format_only_when_they_persist(scripted_openai: ScriptedOpenAI) -> None:
    def server(request: dict[str, Any]) -> Reply:
        if (request.get("response_format") or {}).get("type") == "json_schema":
            return http_error(500, "Internal Server Error")
        return json_reply({"name": "Tom", "age": 3})

    scripted_openai.script(server)
    sleeps = Sleeps()
    chat = make_chat(scripted_openai, sleeps)
    chat.complete(ASK, json_schema=PET_SCHEMA)
    kinds = [r["response_format"]["type"] for r in scripted_openai.requests]
    assert kinds == ["json_schema", "json_schema", "json_object"]  # one retry, then the next format
    assert len(sleeps) == 1
    assert chat.capabilities()["structured_output"] == "json_object_schema"


def test_a_server_down_for_every_format_detects_nothing(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(lambda request: http_error(503, "overloaded"))
    chat = make_chat(scripted_openai, max_retries=1)
    with pytest.raises(ModelError, match="no answer after 2 attempts: HTTP 503"):
        chat.complete(ASK, json_schema=PET_SCHEMA)
    # no format is blamed for an outage: the next call probes from the top again
    assert chat.capabilities() == {"structured_output": None, "rejected": [], "tool_choice_required": None}


def test_without_any_response_format_the_schema_goes_in_a_system_note(scripted_openai: ScriptedOpenAI) -> None:
    def server(request: dict[str, Any]) -> Reply:
        if "response_format" in request:
            return http_error(400, "response_format is not supported")
        return text_reply('Sure! ```json\n{"name": "Tom", "age": 3}\n```')

    scripted_openai.script(server)
    chat = make_chat(scripted_openai)
    completion = chat.complete([{"role": "system", "content": "Be brief."}, *ASK], json_schema=PET_SCHEMA)
    assert json.loads(completion.content) == {"name": "Tom", "age": 3}
    assert [r.get("response_format", {}).get("type") for r in scripted_openai.requests] == [
        "json_schema", "json_object", "json_object", None]
    last = scripted_openai.requests[-1]["messages"]
    assert last[0]["role"] == "system" and last[0]["content"].startswith("Be brief.\nReply with only a JSON object")
    assert '"required":["name","age"]' in last[0]["content"]
    assert chat.capabilities()["rejected"] == ["json_object", "json_object_schema", "json_schema"]


def test_pinned_response_format_is_not_probed(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(json_reply({"name": "Tom", "age": 3}))
    chat = make_chat(scripted_openai, response_format="json_object")
    chat.complete(ASK, json_schema=PET_SCHEMA)
    assert scripted_openai.requests[0]["response_format"] == {"type": "json_object", "schema": PET_SCHEMA}


# -- repairs ------------------------------------------------------------------------------------


def test_malformed_json_gets_a_repair_turn(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(malformed_json('{"name": "Tom", "age": '), json_reply({"name": "Tom", "age": 3}))
    chat = make_chat(scripted_openai)
    completion = chat.complete(ASK, json_schema=PET_SCHEMA)
    assert json.loads(completion.content) == {"name": "Tom", "age": 3}
    repair = scripted_openai.requests[1]["messages"]
    assert repair[:-2] == ASK
    assert repair[-2] == {"role": "assistant", "content": '{"name": "Tom", "age": '}
    assert repair[-1]["role"] == "user" and "not valid JSON" in repair[-1]["content"]
    usage = chat.usage()
    assert (usage.calls, usage.requests, usage.repairs) == (1, 2, 1)
    assert completion.prompt_tokens == 22  # both turns are counted


def test_a_schema_violation_is_named_in_the_repair_turn(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(json_reply({"name": "Tom", "age": "three"}), json_reply({"name": "Tom", "age": 3}))
    chat = make_chat(scripted_openai)
    chat.complete(ASK, json_schema=PET_SCHEMA)
    assert '"three" is not of type "integer" at /age' in scripted_openai.requests[1]["messages"][-1]["content"]


def test_gives_up_after_the_repair_attempts(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(malformed_json(), json_reply({"name": 1}), json_reply({"age": 2}), json_reply({}))
    chat = make_chat(scripted_openai, repair_attempts=2)
    with pytest.raises(ModelError, match=r"no valid structured output after 2 repair turn\(s\): \"name\" is a required"):
        chat.complete(ASK, json_schema=PET_SCHEMA)
    assert len(scripted_openai.requests) == 3 and scripted_openai.remaining == 1
    usage = chat.usage()
    assert (usage.calls, usage.failures, usage.repairs) == (1, 1, 2)


def test_check_json_finds_the_object_in_surrounding_text() -> None:
    import jsonschema_rs

    validator = jsonschema_rs.validator_for(PET_SCHEMA)
    assert check_json('Here: {"name": "a", "age": 1} done', validator) == ('{"name": "a", "age": 1}', "")
    assert check_json("", validator)[1] == "the reply is empty, not a JSON object"
    assert check_json("[1]", validator)[1] == '[1] is not of type "object"'


# -- retries ------------------------------------------------------------------------------------


def test_429_then_success_honours_retry_after(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(http_error(429, "slow down", retry_after=7), text_reply("hello"))
    sleeps = Sleeps()
    chat = make_chat(scripted_openai, sleeps)
    assert chat.complete(ASK).content == "hello"
    assert sleeps == [7.0]
    assert (chat.usage().requests, chat.usage().retries) == (2, 1)


def test_500s_exhausted_raise_model_error_after_exponential_backoff(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(*[http_error(500, "boom")] * 4)
    sleeps = Sleeps()
    chat = make_chat(scripted_openai, sleeps, max_retries=3)
    with pytest.raises(ModelError, match="no answer after 4 attempts: HTTP 500: boom"):
        chat.complete(ASK)
    assert len(scripted_openai.requests) == 4 and len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        assert 0.5 * 2**attempt * 0.75 <= delay <= 0.5 * 2**attempt * 1.25
    # the jitter is drawn from the request, so a rerun waits alike
    scripted_openai.script(*[http_error(500, "boom")] * 4)
    again = Sleeps()
    with pytest.raises(ModelError):
        make_chat(scripted_openai, again, max_retries=3).complete(ASK)
    assert again == sleeps


def test_a_hang_past_the_timeout_is_retried(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(hang(1.5, text_reply("late")), text_reply("on time"))
    chat = make_chat(scripted_openai, timeout=0.5)
    assert chat.complete(ASK).content == "on time"
    assert (chat.usage().requests, chat.usage().retries) == (2, 1)


def test_a_client_error_is_not_retried_and_says_what_to_check(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(http_error(404, "model 'nope' not found"))
    with pytest.raises(ModelError, match=r"HTTP 404: model 'nope' not found \(check the model id"):
        make_chat(scripted_openai).complete(ASK)
    assert len(scripted_openai.requests) == 1


def test_an_unreachable_server_is_a_model_error() -> None:
    with ScriptedOpenAI() as server:
        base_url = server.base_url
    chat = OpenAIChat("m", base_url, sleep=Sleeps(), max_retries=1, timeout=2)
    with pytest.raises(ModelError, match=r"connection failed .*is the server running"):
        chat.complete(ASK)


# -- tool calls -----------------------------------------------------------------------------------


def test_tool_calls_pass_through_and_null_content_is_normalised(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.reset(quirks=Quirks.llama_cpp())
    scripted_openai.script(tool_call_reply(("get_pet", {"petId": 42})), text_reply("Rex"))
    chat = make_chat(scripted_openai)
    first = chat.complete(ASK, tools=[GET_PET], tool_choice="auto")
    (call,) = first.tool_calls
    assert (call.name, json.loads(call.arguments), first.content) == ("get_pet", {"petId": 42}, "")
    assert call.id == f"call_{first.cache_key[:12]}_0"  # drawn from the request: the same in every run
    history: list[dict[str, Any]] = [*ASK, {"role": "assistant", "content": None, "tool_calls": [
        {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": {"petId": 42}}}]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"status": 200}'}]
    assert chat.complete(history, tools=[GET_PET], tool_choice="auto").content == "Rex"
    request = scripted_openai.requests[1]
    assert request["messages"][1]["content"] == ""
    assert request["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"petId":42}'
    assert request["tools"] == [GET_PET] and request["tool_choice"] == "auto"
    assert scripted_openai.rejected == []


def test_required_tool_choice_falls_back_to_auto_with_a_note(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.reset(quirks=Quirks.llama_cpp())
    scripted_openai.script(tool_call_reply(("get_pet", {"petId": 1})), tool_call_reply(("get_pet", {"petId": 2})))
    chat = make_chat(scripted_openai)
    assert chat.complete(ASK, tools=[GET_PET], tool_choice="required").tool_calls
    choices = [r.get("tool_choice") for r in scripted_openai.requests]
    assert choices == ["required", "required", "auto"]  # two 500s in a row, then the fallback
    assert scripted_openai.requests[-1]["messages"][0] == {"role": "system",
                                                           "content": "Answer by calling one of the tools."}
    assert chat.capabilities()["tool_choice_required"] is False
    chat.complete([*ASK, {"role": "user", "content": "again"}], tools=[GET_PET], tool_choice="required")
    assert scripted_openai.requests[-1]["tool_choice"] == "auto" and len(scripted_openai.requests) == 4


def test_normalise_messages_leaves_the_callers_list_alone() -> None:
    messages: list[dict[str, Any]] = [{"role": "assistant", "content": None, "tool_calls": []}]
    assert normalise_messages(messages) == [{"role": "assistant", "content": ""}]
    assert messages == [{"role": "assistant", "content": None, "tool_calls": []}]


# -- record and replay --------------------------------------------------------------------------------


def _record_session(chat: OpenAIChat) -> list[Any]:
    structured = chat.complete(ASK, json_schema=PET_SCHEMA)
    called = chat.complete(ASK, tools=[GET_PET], tool_choice={"type": "function", "function": {"name": "get_pet"}})
    return [structured, called]


def test_record_then_replay_with_the_server_stopped(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache")
    with ScriptedOpenAI([json_reply({"name": "Tom", "age": 3}), tool_call_reply(("get_pet", {"petId": 7}))],
                        quirks=Quirks.llama_cpp()) as server:
        recorded = _record_session(make_chat(server, cache=cache))
        base_url, received = server.base_url, len(server.requests)
    assert received == 3  # the json_schema probe, then one request per call
    replay = OpenAIChat(server.model, base_url, cache=ResponseCache(tmp_path / "cache"), replay_only=True)
    replayed = _record_session(replay)
    assert [c.cached for c in replayed] == [True, True]
    assert [c.__class__(**{**_fields(c), "cached": False}) for c in replayed] == recorded
    usage = replay.usage()
    assert (usage.calls, usage.requests, usage.cache_hits) == (2, 0, 2)
    assert usage.prompt_tokens == sum(c.prompt_tokens for c in recorded)
    # a rerun in record mode with the cache is served from it too: no server needed
    rerun = OpenAIChat(server.model, base_url, cache=cache, sleep=Sleeps(), max_retries=0)
    assert _record_session(rerun)[1].tool_calls == recorded[1].tool_calls and rerun.usage().requests == 0


def _fields(completion: Any) -> dict[str, Any]:
    return {name: getattr(completion, name) for name in completion.__slots__}


def test_cache_entries_are_sharded_json_files(tmp_path: Path, scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(text_reply("hello"))
    completion = make_chat(scripted_openai, cache=ResponseCache(tmp_path)).complete(ASK, temperature=0)
    key = completion.cache_key
    path = tmp_path / key[:2] / f"{key}.json"
    entry = json.loads(path.read_text())
    assert entry["key"] == key and entry["version"] == "1"
    assert entry["response"] == {"content": "hello", "tool_calls": []}
    assert entry["request"]["messages"] == ASK and "base_url" not in entry["request"]
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [path.name]  # no temporary files left


def test_a_recorded_failure_replays_as_the_same_error(tmp_path: Path, scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(*[malformed_json()] * 2)
    chat = make_chat(scripted_openai, cache=ResponseCache(tmp_path), repair_attempts=1)
    with pytest.raises(ModelError) as recorded:
        chat.complete(ASK, json_schema=PET_SCHEMA)
    replay = OpenAIChat("scripted-model", "http://127.0.0.1:9/v1", cache=ResponseCache(tmp_path), replay_only=True,
                        repair_attempts=1)
    with pytest.raises(ModelError) as replayed:
        replay.complete(ASK, json_schema=PET_SCHEMA)
    assert str(replayed.value) == str(recorded.value)
    assert replay.usage().failures == 1 and replay.usage().prompt_tokens == chat.usage().prompt_tokens


def test_a_replay_only_miss_is_a_clear_error(tmp_path: Path) -> None:
    chat = OpenAIChat("m", "http://127.0.0.1:9/v1", cache=ResponseCache(tmp_path), replay_only=True)
    with pytest.raises(CacheMiss, match=r"cache miss for key [0-9a-f]{64} in --replay-only mode: .*record it first"):
        chat.complete(ASK)
    with pytest.raises(ValueError, match="needs a cache"):
        OpenAIChat("m", "http://127.0.0.1:9/v1", replay_only=True)


# -- accounting -----------------------------------------------------------------------------------


def test_scoped_views_count_their_own_calls_across_threads(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(lambda request: text_reply("ok", prompt_tokens=3, completion_tokens=1))
    chat = make_chat(scripted_openai)
    scopes = [chat.scoped() for _ in range(4)]

    def work(i: int) -> None:
        for n in range(i + 1):
            scopes[i].complete([{"role": "user", "content": f"scope {i} call {n}"}])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s.usage().calls for s in scopes] == [1, 2, 3, 4]
    assert [s.usage().prompt_tokens for s in scopes] == [3, 6, 9, 12]
    assert len(scopes[3].usage().cache_keys) == 4
    total = chat.usage(reset=True)
    assert (total.calls, total.requests, len(total.cache_keys)) == (10, 10, 10)
    assert chat.usage().calls == 0 and scopes[0].usage().calls == 1


def test_a_refusal_of_the_request_itself_is_recorded(tmp_path: Path, scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(http_error(400, "Requested tokens (4000) exceed context window of 2048"))
    chat = make_chat(scripted_openai, cache=ResponseCache(tmp_path))
    with pytest.raises(ModelError, match="refused the request: HTTP 400: Requested tokens") as recorded:
        chat.complete(ASK)
    replay = OpenAIChat("scripted-model", "http://127.0.0.1:9/v1", cache=ResponseCache(tmp_path), replay_only=True)
    with pytest.raises(ModelError) as replayed:
        replay.complete(ASK)
    assert str(replayed.value) == str(recorded.value)


def test_a_wrong_model_is_not_taken_for_a_missing_capability(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(http_error(404, "The model `gpt-nope` does not exist"))
    chat = make_chat(scripted_openai)
    with pytest.raises(ModelError, match="HTTP 404: The model `gpt-nope` does not exist"):
        chat.complete(ASK, json_schema=PET_SCHEMA)
    assert len(scripted_openai.requests) == 1 and chat.capabilities()["rejected"] == []

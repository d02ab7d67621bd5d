"""The conversation format ``toolgrad train`` teaches and ``toolgrad serve-model`` serves
(toolgrad.train.chat_format): what a model is shown, what it is trained to say, and how the
server's chat handler turns a reply back into OpenAI tool calls (no torch, no llama.cpp)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from toolgrad.train import call_grammar
from toolgrad.train.chat_format import (
    CUT_MARK,
    END,
    FORMAT_NAME,
    TOOL_RESULT_CHARS,
    chat_handler,
    forced_tool,
    parse_reply,
    render,
    training_segments,
)

TOOLS = [{"type": "function", "function": {"name": "pets__add", "description": "Add a pet", "parameters": {
    "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}},
    {"type": "function", "function": {"name": "pets__get", "description": "Get", "parameters": {
        "type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}}}]
ROW = {"tools": TOOLS, "messages": [
    {"role": "system", "content": "Use tools."}, {"role": "user", "content": "Add 'Rex' & get it"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c0", "type": "function", "function": {
        "name": "pets__add", "arguments": {"name": "Rex"}}}]},
    {"role": "tool", "tool_call_id": "c0", "content": '{"status": 201, "body": {"name": "Rex", "id": 7}}'},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": "pets__get", "arguments": '{"id": 7}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": '{"status": 200, "body": {"id": 7}}'},
    {"role": "assistant", "content": "Rex is pet 7."}]}


def test_the_model_sees_its_tools_and_every_result() -> None:
    text = render(ROW["messages"], TOOLS, add_generation_prompt=False)
    assert text.startswith("<|im_start|>system\nUse tools.\n\nTools:\n"
                           '{"name":"pets__add","description":"Add a pet","parameters":')
    # no HTML escaping; arguments given as an object or as text read the same
    assert "<|im_start|>user\nAdd 'Rex' & get it<|im_end|>\n" in text
    assert '<|im_start|>assistant\n<tool_call>{"name":"pets__add","arguments":{"name":"Rex"}}</tool_call><|im_end|>\n' in text
    assert '<tool_call>{"name":"pets__get","arguments":{"id":7}}</tool_call>' in text
    # results are shown, keys sorted (stored and live results read alike)
    assert '<|im_start|>tool\n{"body":{"id":7,"name":"Rex"},"status":201}<|im_end|>\n' in text
    assert text.endswith("<|im_start|>assistant\nRex is pet 7.<|im_end|>\n")
    assert render(ROW["messages"][:2], TOOLS).endswith("get it<|im_end|>\n<|im_start|>assistant\n")


def test_tools_without_a_system_turn_get_one_and_long_results_are_cut() -> None:
    long = json.dumps({"status": 200, "body": "x" * (2 * TOOL_RESULT_CHARS)})
    text = render([{"role": "user", "content": "hi"}, {"role": "tool", "content": long}], TOOLS[:1])
    assert text.startswith('<|im_start|>system\nTools:\n{"name":"pets__add"')
    shown = text.split("<|im_start|>tool\n")[1].split(END)[0]
    assert len(shown) == TOOL_RESULT_CHARS + len(CUT_MARK) and shown.endswith(CUT_MARK)
    assert render([{"role": "user", "content": "hi"}], []) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_loss_falls_on_every_assistant_turn_and_nothing_else() -> None:
    pieces = training_segments(ROW)
    assert "".join(text for text, _ in pieces) == render(ROW["messages"], TOOLS, add_generation_prompt=False)
    learnt = [text for text, generated in pieces if generated]
    assert learnt == ['<tool_call>{"name":"pets__add","arguments":{"name":"Rex"}}</tool_call>' + END,
                      '<tool_call>{"name":"pets__get","arguments":{"id":7}}</tool_call>' + END,
                      "Rex is pet 7." + END]
    # each learnt turn follows the prompt the server renders for that moment of the conversation
    position = 0
    for index, (_text, generated) in enumerate(pieces):
        if generated:
            prefix = "".join(t for t, _ in pieces[:index])
            cut = [i for i, m in enumerate(ROW["messages"]) if m["role"] == "assistant"][position]
            assert prefix == render(ROW["messages"][:cut], TOOLS)
            position += 1


def test_replies_become_tool_calls() -> None:
    content, calls = parse_reply('ok <tool_call>{"name": "pets__get", "arguments": {"id": 7}}</tool_call>'
                                 '<tool_call>{"name": "pets__add", "arguments": {}}</tool_call>')
    assert content == "ok"
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("pets__get", {"id": 7}), ("pets__add", {})]
    assert [c["id"] for c in calls] == ["call_0", "call_1"] and all(c["type"] == "function" for c in calls)
    # bad input: a block that is not {"name": str, "arguments": object} is no call and stays as text
    for bad in ('<tool_call>{"name": 3}</tool_call>', "<tool_call>not json</tool_call>",
                '<tool_call>{"name": "x", "arguments": [1]}</tool_call>'):
        assert parse_reply(bad) == (bad, [])
    assert parse_reply("  Rex is pet 7. ") == ("Rex is pet 7.", [])


class FakeLlama:
    """Stands in for ``llama_cpp.Llama``: records what the handler asks for and replies with the
    next of ``texts``."""

    def __init__(self, *texts: str) -> None:
        self.texts, self.seen = list(texts), []

    def create_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.seen.append(kwargs)
        return {"id": "cmpl-1", "created": 1, "model": "m", "usage": {"prompt_tokens": 3, "completion_tokens": 4},
                "choices": [{"text": self.texts[len(self.seen) - 1], "finish_reason": "stop"}]}


@pytest.fixture
def grammars(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The tool names each call grammar was built for (llama.cpp itself is the llm tier's)."""
    built: list[list[str]] = []

    def fake(tools: list[dict[str, Any]], llama: Any = None) -> str:
        built.append([t["function"]["name"] for t in tools])
        return f"grammar {len(built)}"

    monkeypatch.setattr(call_grammar, "call_grammar", fake)
    return built


def test_a_call_the_model_opens_is_generated_again_under_the_tools_grammar(grammars: list[list[str]]) -> None:
    prompt = render(ROW["messages"][:2], TOOLS)
    # free text, then a call (written loosely: the grammar's pass writes it again)
    llama = FakeLlama('Adding. <tool_call>{"name": "pets__add"', '{"name":"pets__add","arguments":{"name":"Rex"}}')
    reply = chat_handler(llama=llama, messages=ROW["messages"][:2], tools=TOOLS, tool_choice="auto",
                         temperature=0.0, seed=None, max_tokens=None, stop="###", grammar=None)
    free, call = llama.seen
    assert free["prompt"] == prompt and free["stop"] == [END, "###"] and free["max_tokens"] == 512
    assert free["temperature"] == 0.0 and "seed" not in free and "grammar" not in free
    assert call["prompt"] == prompt + "Adding. <tool_call>" and call["grammar"] == "grammar 1" and call["stop"] == []
    assert grammars == [["pets__add", "pets__get"]]
    choice = reply["choices"][0]
    assert reply["object"] == "chat.completion" and choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Adding."
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "pets__add", "arguments": '{"name":"Rex"}'}
    assert reply["usage"] == {"prompt_tokens": 3, "completion_tokens": 8, "total_tokens": 11}
    # a reply without a call is one completion, no grammar
    llama = FakeLlama("Rex is pet 7.")
    reply = chat_handler(llama=llama, messages=ROW["messages"], tools=TOOLS, tool_choice="auto")
    assert len(llama.seen) == 1 and reply["choices"][0]["message"] == {"role": "assistant", "content": "Rex is pet 7."}


def test_tool_choice_starts_the_reply_with_a_call(grammars: list[list[str]]) -> None:
    prompt = render(ROW["messages"][:2], TOOLS)
    for choice, offered in (({"type": "function", "function": {"name": "pets__get"}}, ["pets__get"]),
                            ("required", ["pets__add", "pets__get"])):
        llama = FakeLlama('{"name":"pets__get","arguments":{"id":7}}')
        reply = chat_handler(llama=llama, messages=ROW["messages"][:2], tools=TOOLS, tool_choice=choice)
        (call,) = llama.seen
        assert call["prompt"] == prompt + "<tool_call>" and grammars[-1] == offered
        assert reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"id":7}'
    # tool_choice "none" offers no tools: the reply is text, whatever it looks like
    llama = FakeLlama('<tool_call>{"name":"pets__get","arguments":{"id":7}}</tool_call>')
    reply = chat_handler(llama=llama, messages=ROW["messages"][:2], tools=TOOLS, tool_choice="none", max_tokens=9)
    assert "Tools:" not in llama.seen[0]["prompt"] and llama.seen[0]["max_tokens"] == 9 and len(grammars) == 2
    assert reply["choices"][0]["message"]["content"].startswith("<tool_call>")


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="does not stream"):  # bad input: stream=true
        chat_handler(llama=FakeLlama(""), messages=[], stream=True)
    with pytest.raises(ValueError, match="'pets__del', which is not among the tools offered"):
        forced_tool({"type": "function", "function": {"name": "pets__del"}}, TOOLS)  # bad input: unknown tool
    assert forced_tool("auto", TOOLS) is None and forced_tool("required", TOOLS) is None
    assert forced_tool({"type": "function", "function": {"name": "pets__get"}}, TOOLS)["name"] == "pets__get"
    assert FORMAT_NAME == "toolgrad-tools"


def test_the_call_grammar_holds_the_top_level_of_each_tools_arguments() -> None:
    """What the grammar keeps of a tool's parameters: its keys, the required ones, scalar types
    and enums; nested schemas, patterns and formats are left to the sandbox."""
    from toolgrad.train.call_grammar import ANY_OBJECT, _parameters

    tool = {"type": "function", "function": {"name": "pets__add", "parameters": {
        "type": "object", "required": ["name", "ghost"], "properties": {
            "name": {"type": "string", "pattern": "^[\\d]+$", "format": "uuid"},
            "age": {"type": "integer", "minimum": 0}, "kind": {"type": "string", "enum": ["cat", "dog"]},
            "tags": {"type": "array", "items": {"type": "string"}}, "owner": {"type": "object"},
            "either": {"type": ["string", "null"]}}}}}
    assert _parameters(tool) == {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "age": {"type": "integer"}, "kind": {"enum": ["cat", "dog"]},
        "tags": {}, "owner": {}, "either": {}}}
    # bad input: parameters that are no object schema take any JSON object
    for parameters in (None, [], {"type": "object"}, {"properties": "name"}):
        assert _parameters({"function": {"name": "x", "parameters": parameters}}) == ANY_OBJECT

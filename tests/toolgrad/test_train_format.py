"""The conversation format ``toolgrad train`` teaches and ``toolgrad serve-model`` serves
(toolgrad.train.chat_format): what a model is shown, what it is trained to say, and how the
server's chat handler turns a reply back into OpenAI tool calls (no torch, no llama.cpp)."""

from __future__ import annotations

import json
from typing import Any

import pytest

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
    """Stands in for ``llama_cpp.Llama``: records what the handler asks for, replies ``text``."""

    def __init__(self, text: str) -> None:
        self.text, self.seen = text, {}

    def create_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.seen = kwargs
        return {"id": "cmpl-1", "created": 1, "model": "m", "usage": {"prompt_tokens": 3},
                "choices": [{"text": self.text, "finish_reason": "stop"}]}


def test_the_servers_handler_answers_in_openais_shape() -> None:
    llama = FakeLlama('<tool_call>{"name": "pets__add", "arguments": {"name": "Rex"}}</tool_call>')
    reply = chat_handler(llama=llama, messages=ROW["messages"][:2], tools=TOOLS, tool_choice="auto",
                         temperature=0.0, seed=None, max_tokens=None, stop="###", grammar=None)
    assert llama.seen["prompt"] == render(ROW["messages"][:2], TOOLS)
    assert llama.seen["stop"] == [END, "###"] and llama.seen["max_tokens"] == 512
    assert llama.seen["temperature"] == 0.0 and "seed" not in llama.seen and "grammar" not in llama.seen
    choice = reply["choices"][0]
    assert reply["object"] == "chat.completion" and choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "pets__add", "arguments": '{"name":"Rex"}'}
    # tool_choice "none" offers no tools: the reply is text, whatever it looks like
    llama = FakeLlama("Rex is pet 7.")
    reply = chat_handler(llama=llama, messages=ROW["messages"][:2], tools=TOOLS, tool_choice="none", max_tokens=9)
    assert "Tools:" not in llama.seen["prompt"] and llama.seen["max_tokens"] == 9
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": "Rex is pet 7."}


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="does not stream"):  # bad input: stream=true
        chat_handler(llama=FakeLlama(""), messages=[], stream=True)
    with pytest.raises(ValueError, match="'pets__del', which is not among the tools offered"):
        forced_tool({"type": "function", "function": {"name": "pets__del"}}, TOOLS)  # bad input: unknown tool
    assert forced_tool("auto", TOOLS) is None and forced_tool("required", TOOLS) is None
    assert forced_tool({"type": "function", "function": {"name": "pets__get"}}, TOOLS)["name"] == "pets__get"
    assert FORMAT_NAME == "toolgrad-tools"

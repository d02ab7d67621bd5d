"""The training examples ``toolgrad train`` cuts from an HF-export row: the server's prompt, the
text its grammar lets a model generate, loss-free prompts (no torch needed here)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("jinja2")

from toolgrad.train.server_format import (
    END_TEXT,
    arguments_text,
    grammar_ordered,
    render_prompt,
    training_examples,
)

TOOLS = [{"type": "function", "function": {"name": "pets__add", "description": "Add a pet", "parameters": {
    "type": "object", "properties": {"tags": {"type": "array", "items": {"type": "object", "properties": {
        "z": {"type": "string"}, "a": {"type": "string"}}, "required": ["a"]}},
        "name": {"type": "string"}, "status": {"type": "string"}}, "required": ["status", "name"]}}},
    {"type": "function", "function": {"name": "pets__get", "description": "Get", "parameters": {
        "type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}}}]
ROW = {"tools": TOOLS, "messages": [
    {"role": "system", "content": "Use tools."}, {"role": "user", "content": "Add 'Rex' & get pet 7"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c0", "type": "function", "function": {
        "name": "pets__add", "arguments": {"status": "sold", "tags": [{"z": "q", "a": "b"}], "name": "Rex"}}}]},
    {"role": "tool", "tool_call_id": "c0", "name": "pets__add", "content": '{"status": 200, "body": {"id": 7}}'},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": "pets__get", "arguments": {"id": 7}}}]},
    {"role": "tool", "tool_call_id": "c1", "name": "pets__get", "content": "{}"},
    {"role": "assistant", "content": "Rex is pet 7."}]}


def test_arguments_follow_the_grammar_key_order() -> None:
    schema = TOOLS[0]["function"]["parameters"]
    ordered = grammar_ordered({"tags": [{"z": "q", "a": "b"}], "extra": 1, "status": "s", "name": "n"}, schema)
    assert list(ordered) == ["name", "status", "tags", "extra"]  # required in schema order, optional, unknown
    assert list(ordered["tags"][0]) == ["a", "z"]
    assert arguments_text({"id": 7, "x": "é"}, {"properties": {"id": {}}}) == '{"id":7,"x":"é"}'


def test_two_examples_per_row_in_the_servers_words() -> None:
    calls, closing = training_examples(ROW)
    assert calls["prompt"].startswith("<|im_start|>system\nUse tools.\n\nYou have access to the following functions:")
    assert "functions.pets__add:\n" in calls["prompt"] and "functions.pets__get:\n" in calls["prompt"]
    # the server's template HTML-escapes message text; the prompt ends where the model begins
    assert "Add &#39;Rex&#39; &amp; get pet 7<|im_end|>\n<|im_start|>assistant\n" in calls["prompt"]
    assert calls["completion"] == ('functions.pets__add:\n{"name":"Rex","status":"sold","tags":[{"a":"b","z":"q"}]}\n'
                                   'functions.pets__get:\n{"id":7}\n' + END_TEXT)
    assert closing["completion"] == "message:\n" + END_TEXT
    # the closing turn sees its calls (escaped, no separator: the template's own rendering) and
    # empty tool turns: this server never shows a model the results
    assert closing["prompt"].startswith(calls["prompt"])
    assert closing["prompt"].endswith("<|im_start|>tool\n<|im_start|>tool\n<|im_start|>assistant\n")
    assert "&#34;name&#34;:&#34;Rex&#34;" in closing["prompt"] and '"status": 200' not in closing["prompt"]


def test_a_row_without_calls_only_closes() -> None:
    row = {"tools": TOOLS, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"},
                                        {"role": "assistant", "content": "hello"}]}
    (only,) = training_examples(row)
    assert only["completion"] == "message:\n" + END_TEXT
    assert only["prompt"] == render_prompt(row["messages"][:2], TOOLS)
    assert json.dumps(TOOLS[1]["function"]["parameters"], sort_keys=True) in only["prompt"]

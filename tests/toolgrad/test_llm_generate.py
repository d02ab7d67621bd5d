"""Generation with a model over real HTTP (the real ``openai`` client against a scripted server
on 127.0.0.1): whatever the model proposes, only calls that really ran, with a 2xx, enter a
chain, and every sample it yields certifies at 100%.

The scripted model is adversarial on purpose: each iteration it proposes one task whose call
uses a made-up id (404), one whose call names a tool outside the proposal, and one that works.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from benchmarks.certify.certificate import certify_file
from tests.support.scripted_server import Reply, ScriptedOpenAI, json_reply, text_reply, tool_call_reply
from toolgrad.dataset.lines import read_samples
from toolgrad.dataset.runner import generate_dataset
from toolgrad.settings import GenerateSettings

MADE_UP_ID = 987654321


def _schema(request: dict[str, Any]) -> dict[str, Any]:
    fmt = request.get("response_format") or {}
    return dict((fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or {})


def _tools(names: list[str], *suffixes: str) -> list[str]:
    return [n for n in names if n.endswith(suffixes)][:1]


def adversary(request: dict[str, Any]) -> Reply:
    """Plays all four modules, choosing by what the request asks for."""
    props = _schema(request).get("properties", {})
    if "proposals" in props:
        names = props["proposals"]["items"]["properties"]["tools"]["items"]["enum"]
        # the mini-batch varies by seed and iteration: propose what it holds
        proposals = [
            {"instruction": f"Show me pet {MADE_UP_ID}.", "tools": _tools(names, "getPetById")},
            {"instruction": "Delete order 3, using the inventory.", "tools": _tools(names, "getInventory")},
            {"instruction": "Which pets are sold?", "tools": _tools(names, "findPetsByStatus", "getInventory")},
        ]
        return json_reply({"proposals": [p for p in proposals if p["tools"]]})
    if "choice" in props:
        choice = next(c for c in props["choice"]["enum"] if c is not None)
        extend = "extend" in props["action"]["enum"]
        return json_reply({"choice": choice, "action": "extend" if extend else "new",
                           "chain": 0 if extend else None, "rationale": "It worked and it is useful."})
    if "query" in props:  # cite what the calls returned, as the updater is told to
        shown = request["messages"][-1]["content"] if len(request["messages"]) == 2 else request["messages"][1]["content"]
        names = list(dict.fromkeys(re.findall(r'"name":"([^"]{1,40})"', shown)))[:2]
        counts = re.findall(r'getInventory\(\{}\) -> 200 \{"[^"]*":(\d+)', shown)[:1]
        answer = "The sold pets are called " + " and ".join(f"'{n}'" for n in names) if names else "No names"
        answer += f"; the inventory's first count is {counts[0]}." if counts else "."
        return json_reply({"query": "Which of your pets have been sold, and what are they called?",
                           "answer": answer})
    if request.get("tools"):  # the Executor
        if any(m["role"] == "tool" for m in request["messages"]):
            return text_reply("Done.")
        task = request["messages"][1]["content"]
        offered = [t["function"]["name"] for t in request["tools"]]
        if str(MADE_UP_ID) in task:
            return tool_call_reply((offered[0], {"petId": MADE_UP_ID}))
        if "Delete order" in task:  # a tool the proposal did not name
            return tool_call_reply((offered[0].replace("getInventory", "deleteOrder"), {"orderId": 3}))
        return tool_call_reply((offered[0], {"status": "sold"} if "findPetsByStatus" in offered[0] else {}))
    return text_reply("?")


def test_only_calls_that_really_ran_enter_a_chain_and_every_sample_certifies(
        scripted_openai: ScriptedOpenAI, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    scripted_openai.script(adversary)
    out = tmp_path / "model.jsonl"
    summary = generate_dataset(GenerateSettings(
        envs=["petstore"], n=3, seed=0, llm="openai", model=scripted_openai.model,
        base_url=scripted_openai.base_url, iterations=2, batch_size=50, proposals=3, output=str(out)))
    samples = list(read_samples(out, traces=True))
    assert summary.samples == len(samples) == 3 and summary.model_requests > 0, summary

    made_up_seen = refused_seen = 0
    for sample in samples:
        steps = [step for chain in sample.chains for step in chain.steps]
        assert steps and all(200 <= s.status < 300 for s in steps), [(s.tool, s.status) for s in steps]
        assert {s.tool.split("__")[1] for s in steps} <= {"findPetsByStatus", "getInventory"}
        executions = [e for it in sample.trace.iterations for e in it.executions]
        # the model's bad calls ran and were kept out: a 404 for the made-up id, and a refusal
        made_up = [e for e in executions if e.steps and e.steps[0].arguments.get("petId") == MADE_UP_ID]
        assert all(not e.ok and e.steps[0].status == 404 for e in made_up)
        # the call to a tool the proposal did not name was never made
        refused = [e for it in sample.trace.iterations for e in it.executions
                   if it.proposals[e.proposal].instruction.startswith("Delete order")]
        assert all(not e.ok and not e.steps for e in refused)
        made_up_seen += len(made_up)
        refused_seen += len(refused)
    assert made_up_seen and refused_seen, "the adversary's bad calls never reached the executor"
    certificate = certify_file(out)
    assert (certificate.pass_rate, certificate.passed) == (1.0, 3), orjson.dumps(certificate.model_dump()).decode()


def test_the_sampling_temperature_is_sent_and_recorded(
        scripted_openai: ScriptedOpenAI, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    scripted_openai.script(adversary)
    out = tmp_path / "hot.jsonl"
    generate_dataset(GenerateSettings(
        envs=["petstore"], n=1, seed=0, llm="openai", model=scripted_openai.model, temperature=1.0,
        base_url=scripted_openai.base_url, iterations=1, batch_size=50, proposals=3, output=str(out)))
    (sample,) = read_samples(out, traces=True)
    assert sample.provenance.generator["temperature"] == 1.0, "the paper's setting, recorded with the sample"
    assert {r.get("temperature") for r in scripted_openai.requests} == {1.0}
    # every tool of the mini-batch is offered to the proposer, not the few a budget left room for
    proposer = next(r for r in scripted_openai.requests if "proposals" in _schema(r).get("properties", {}))
    offered = _schema(proposer)["properties"]["proposals"]["items"]["properties"]["tools"]["items"]["enum"]
    assert len(offered) == len(sample.trace.iterations[0].batch) == 19  # petstore: every operation


def test_two_workers_share_the_model_cache_and_write_the_bytes_of_one(
        scripted_openai: ScriptedOpenAI, tmp_path: Path, monkeypatch: Any) -> None:
    """Two worker processes record into one cache directory (a file per exchange, written
    atomically); a replay-only run with two workers, its endpoint dead, gives the same bytes."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    scripted_openai.script(adversary)
    common: dict[str, Any] = {"envs": ["petstore"], "n": 4, "seed": 0, "llm": "openai",
                              "model": scripted_openai.model, "iterations": 2, "proposals": 3}
    one, two, replayed = tmp_path / "one.jsonl", tmp_path / "two.jsonl", tmp_path / "replayed.jsonl"
    generate_dataset(GenerateSettings(**common, base_url=scripted_openai.base_url, output=str(one)))
    generate_dataset(GenerateSettings(**common, base_url=scripted_openai.base_url, output=str(two),
                                      cache=str(tmp_path / "cache"), workers=2))
    assert one.read_bytes() == two.read_bytes()
    sent = len(scripted_openai.requests)
    summary = generate_dataset(GenerateSettings(**common, base_url=scripted_openai.base_url, output=str(replayed),
                                                cache=str(tmp_path / "cache"), replay_only=True, workers=2))
    assert replayed.read_bytes() == one.read_bytes()
    assert len(scripted_openai.requests) == sent and summary.model_requests == 0 and summary.cache_hits > 0

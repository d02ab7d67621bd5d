"""The query-first DFS baseline: what it writes replays (and the validity checks judge it like any
dataset), it is deterministic, it keeps to its budget, and its model path runs against a scripted
chat model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.certify import certify_file
from benchmarks.dfs import (
    DFSSettings,
    ModelBackend,
    OfflineBackend,
    generate_dfs_dataset,
    search_sample,
)
from toolgrad.dataset import read_samples
from toolgrad.llm.base import Completion, ToolCall
from toolgrad.loop import api_names
from toolgrad.policy import named_apis
from toolgrad.toolbox import Toolbox

LIST_HOURS = "museum__getMuseumHours"
LIST_EVENTS = "museum__listSpecialEvents"


def settings(tmp_path: Path, name: str = "dfs.jsonl", **kw: Any) -> DFSSettings:
    return DFSSettings(**{"envs": ["museum"], "n": 12, "seed": 0, "output": str(tmp_path / name), **kw})


# -- offline ------------------------------------------------------------------------------------


@pytest.mark.parametrize("envs", [["museum"], ["links"], ["museum", "links"]])
def test_offline_writes_only_solved_samples_and_every_one_replays(tmp_path: Path, envs: list[str]) -> None:
    s = settings(tmp_path, envs=envs)
    summary = generate_dfs_dataset(s)
    samples = list(read_samples(s.output))
    # every attempted seed is either solved (written) or counted as failed, never both
    assert 0 < len(samples) <= s.n
    assert summary.new_samples == len(samples)
    assert sorted(summary.seeds + summary.failed_seeds) == s.seeds()
    assert [x.seed for x in samples] == summary.seeds
    certificate = certify_file(Path(s.output))
    # every solved sample replays; the offline query, written before any call, states only the
    # path/query/header values it pins, so its samples may fail the validity checks: counted,
    # and each failure named (the comparison reports it; see benchmarks/compare.py)
    assert certificate.checks["replay"] == len(samples)
    for verdict in certificate.samples:
        failed = [name for name, check in verdict.checks.items() if not check.ok]
        assert verdict.ok == (not failed) and all(verdict.checks[n].reason for n in failed)
    for sample in samples:
        assert sample.provenance.generator["method"] == "dfs"
        assert sample.provenance.llm == "offline"
        needed = {t["function"]["name"] for t in sample.candidate_tools}
        assert 2 <= len(needed) <= 4
        assert needed <= {step.tool for step in sample.steps()}  # the query's tools all ran
        assert all(200 <= step.status < 300 for step in sample.steps())
        assert sample.trace.iterations[0].query == sample.query  # query first
        assert sample.trace.iterations[-1].answer == sample.answer
        assert sample.cost.tool_calls >= len(sample.steps())
        assert sample.cost.model_calls == 0


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    first = settings(tmp_path, "a.jsonl", envs=["museum", "links"])
    second = settings(tmp_path, "b.jsonl", envs=["museum", "links"])
    generate_dfs_dataset(first)
    generate_dfs_dataset(second)
    assert Path(first.output).read_bytes() == Path(second.output).read_bytes()
    other = settings(tmp_path, "c.jsonl", envs=["museum", "links"], seed=100)
    generate_dfs_dataset(other)
    assert Path(other.output).read_bytes() != Path(first.output).read_bytes()


def test_rerun_replaces_the_dataset(tmp_path: Path) -> None:
    s = settings(tmp_path, n=4)
    generate_dfs_dataset(s)
    once = Path(s.output).read_bytes()
    generate_dfs_dataset(s)
    assert Path(s.output).read_bytes() == once


def test_offline_query_is_written_before_any_call_and_names_no_api() -> None:
    toolbox = Toolbox.in_process(["petstore"])
    forbidden = api_names(toolbox)
    backend = OfflineBackend(toolbox, DFSSettings())
    for seed in range(10):
        pool = sorted(toolbox.names())[:8]
        query = backend.write_query(seed, pool)
        assert 2 <= len(query.tools) <= 4 and set(query.tools) <= set(pool)
        assert not named_apis(query.text, forbidden)
        assert query == OfflineBackend(toolbox, DFSSettings()).write_query(seed, pool)


def test_offline_expansion_budget_is_respected() -> None:
    toolbox = Toolbox.in_process(["museum"])
    s = DFSSettings(max_expansions=1)
    for seed in range(6):
        outcome = search_sample(toolbox, OfflineBackend(toolbox, s), seed, s)
        assert outcome.expansions <= 1
        assert not outcome.solved  # a query needs at least two tools, one expansion makes one call
        assert outcome.cost.tool_calls <= 1


# -- a scripted chat model ------------------------------------------------------------------------


class ScriptedChat:
    """A :class:`~toolgrad.llm.base.ChatModel` double: the query writer asks for two list tools
    (naming an API once when ``name_api``), the solver follows ``moves`` (then finishes), the
    answer is fixed. Every exchange is kept for the test to inspect."""

    model = "scripted"
    base_url = "http://scripted.invalid/v1"

    def __init__(self, moves: list[tuple[str, dict[str, Any]]] | None = None, *, name_api: bool = False,
                 repeat_last: bool = False) -> None:
        self.moves = list(moves or [])
        self.name_api = name_api
        self.repeat_last = repeat_last
        self.seen: list[dict[str, Any]] = []

    def complete(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
                 tool_choice: Any = None, json_schema: dict[str, Any] | None = None, temperature: float = 0.0,
                 max_tokens: int | None = None) -> Completion:
        self.seen.append({"messages": messages, "tools": tools, "json_schema": json_schema})
        key = f"key-{len(self.seen)}"
        if json_schema is not None and "tools" in json_schema["properties"]:
            text = "Show me the opening hours and the special events."
            if self.name_api:
                self.name_api = False
                text = f"Call {LIST_HOURS} and show the special events."
            return Completion(orjson.dumps({"query": text, "tools": [LIST_HOURS, LIST_EVENTS]}).decode(),
                              prompt_tokens=100, completion_tokens=20, cache_key=key)
        if json_schema is not None:  # the answer cites a value of each result, as it is asked to
            shown = messages[-1]["content"]
            date = re.search(r'"date":"([^"]+)"', shown)
            event = re.search(r'"name":"([^"]+)"', shown)
            answer = (f"The museum opens daily (first listed day '{date.group(1) if date else '?'}'); "
                      f"special events include '{event.group(1) if event else '?'}'.")
            return Completion(orjson.dumps({"answer": answer}).decode(),
                              prompt_tokens=80, completion_tokens=15, cache_key=key)
        assert tools is not None
        if not self.moves:
            return Completion("Done.", prompt_tokens=50, completion_tokens=2, cache_key=key)
        name, args = self.moves[0] if self.repeat_last and len(self.moves) == 1 else self.moves.pop(0)
        return Completion("", (ToolCall("call-1", name, orjson.dumps(args).decode()),), prompt_tokens=60,
                          completion_tokens=10, cache_key=key)


def test_model_path_writes_a_certified_sample(tmp_path: Path) -> None:
    chat = ScriptedChat([("museum__noSuchTool", {}), (LIST_HOURS, {}), (LIST_EVENTS, {})], name_api=True)
    s = settings(tmp_path, n=1, llm="openai", model="scripted", base_url=chat.base_url)
    summary = generate_dfs_dataset(s, chat=chat)
    assert summary.new_samples == 1
    sample = next(read_samples(s.output))
    assert certify_file(Path(s.output)).pass_rate == 1.0
    assert sample.query == "Show me the opening hours and the special events."  # after the rewrite turn
    assert [step.tool for step in sample.steps()] == [LIST_HOURS, LIST_EVENTS]
    assert sample.answer.startswith("The museum opens daily")
    # query (2 turns: it named an API) + 3 expansions (one pruned) + answer
    assert sample.cost.model_calls == len(chat.seen) == 6
    assert sample.cost.prompt_tokens == 100 * 2 + 60 * 3 + 80
    assert sample.cost.completion_tokens == 20 * 2 + 10 * 3 + 15
    assert sample.cost.tool_calls == 2  # the unknown tool was never called
    assert sample.provenance.cache_keys == [f"key-{i}" for i in range(1, 7)]
    assert sample.provenance.llm == "openai" and sample.provenance.model == "scripted"
    # the search is in the trace: query, three expansions, answer
    trace = sample.trace.iterations
    assert len(trace) == 5
    assert trace[1].failed_stage == "execute" and "unknown tool" in trace[1].error
    # DFSDT's diversity prompt: the second expansion at the root is told what was tried there
    second = chat.seen[3]["messages"][-1]["content"]
    assert "Already tried" in second and "museum__noSuchTool" in second
    # the solver is offered the query's tools only
    assert {t["function"]["name"] for t in chat.seen[2]["tools"]} == {LIST_HOURS, LIST_EVENTS}


def test_model_that_never_finishes_stops_at_the_budget() -> None:
    toolbox = Toolbox.in_process(["museum"])
    s = DFSSettings(envs=["museum"], max_model_calls=10, max_expansions=100)
    chat = ScriptedChat([(LIST_HOURS, {})], repeat_last=True)  # always the same tool: never solved
    backend = ModelBackend(toolbox, chat)
    outcome = search_sample(toolbox, backend, 0, s)
    assert not outcome.solved and "model calls exhausted" in outcome.error
    assert outcome.cost.model_calls == len(chat.seen) == s.max_model_calls - 1  # one kept for the answer
    assert outcome.expansions == s.max_model_calls - 2
    assert outcome.cost.tool_calls == outcome.expansions


def test_model_that_gives_up_fails_the_sample(tmp_path: Path) -> None:
    chat = ScriptedChat([])  # finishes at once, everywhere
    s = settings(tmp_path, n=2, llm="openai", model="scripted")
    summary = generate_dfs_dataset(s, chat=chat)
    assert summary.new_samples == 0 and summary.failed_seeds == [0, 1]
    assert Path(s.output).read_bytes() == b""
    assert summary.model_calls == len(chat.seen) == 2 * 2  # a query and one finishing expansion each

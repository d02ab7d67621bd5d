"""The query-first baseline, ToolBench's DFSDT: the tree walk (width, give-up backtracking, depth
in tree nodes, the budget), the offline backend (deterministic, what it writes replays and is judged
by the validity checks like any dataset), and the model backend over the real ``openai`` client
against the scripted server on 127.0.0.1, with every model call and token counted exactly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.baseline.dfs import DFSSettings, draw_pool, generate_dfs_dataset
from benchmarks.baseline.dfs_offline import OfflineBackend
from benchmarks.baseline.dfs_search import FINISH, DecisionCounter, Move, Node, Query, Turn, search_sample
from benchmarks.certify.certificate import certify_file
from tests.support import scripted_server as scripted
from toolgrad.dataset.lines import read_samples
from toolgrad.loop.policy import CallFn, named_apis
from toolgrad.loop.sample import api_names
from toolgrad.toolbox import Toolbox

HOURS = "museum__getMuseumHours"
EVENTS = "museum__listSpecialEvents"
MUSEUM_TOOLS = 8


def settings(tmp_path: Path, name: str = "dfs.jsonl", **kw: Any) -> DFSSettings:
    return DFSSettings(**{"envs": ["museum"], "n": 12, "seed": 0, "output": str(tmp_path / name), **kw})


# -- the tree walk, with a backend that plays a script --------------------------------------------


class Scripted(DecisionCounter):
    """A SearchBackend playing ``moves`` in order ("call:TOOL", "thought", "give_up", "answer",
    "bad"), recording the node each expansion was asked at."""

    name = "scripted"

    def __init__(self, moves: list[str]) -> None:
        self.moves = list(moves)
        self.asked: list[tuple[int, int, int, list[str]]] = []  # (depth, turns on path, steps, tried)

    def write_query(self, seed: int, pool: list[str]) -> Query:
        self.decide()
        return Query("Show me the hours and the events.", (HOURS, EVENTS))

    def expand(self, seed: int, query: Query, pool: list[str], node: Node, call: CallFn) -> Move:
        self.decide()
        self.asked.append((node.depth, len(node.path), len(node.steps), [t.function for t in node.tried]))
        move = self.moves.pop(0) if self.moves else "give_up"
        if move.startswith("call:"):
            tool = move.split(":", 1)[1]
            result = call(tool, {})
            return Move("call", Turn(function=tool, arguments="{}", observation=result.content()), result=result)
        if move == "thought":
            return Move("thought", Turn(thought="Let me think."))
        if move == "answer":
            return Move("answer", Turn(function=FINISH, arguments="{}"), answer="Here you are.")
        if move == "bad":
            return Move("invalid", Turn(function="nope", arguments="{}", observation="no such function"), note="x")
        return Move("give_up", Turn(function=FINISH, arguments="{}"))


@pytest.fixture(scope="module")
def museum() -> Toolbox:
    return Toolbox.in_process(["museum"])


def walk(toolbox: Toolbox, moves: list[str], *, width: int = 2, max_depth: int = 12, cap: int = 200) -> tuple[Any, Scripted]:
    backend = Scripted(moves)
    outcome = search_sample(toolbox, backend, 0, draw_pool(toolbox, 50, 0), width=width, max_depth=max_depth,
                            max_model_calls=cap)
    return outcome, backend


def test_give_up_backtracks_past_the_node_that_gave_up(museum: Toolbox) -> None:
    # root -> hours; at hours: "bad" (a call that could not be made) -> at it: give up, which abandons
    # the bad node; hours' second child is events, then Finish(give_answer)
    outcome, backend = walk(museum, ["call:" + HOURS, "bad", "give_up", "call:" + EVENTS, "answer"])
    assert outcome.solved and not outcome.error
    assert [s.tool for s in outcome.steps] == [HOURS, EVENTS]  # the path's 2xx calls; the bad turn is not a call
    # depth counts ToolBench's tree nodes: a call without a thought adds two
    assert [a[:3] for a in backend.asked] == [(0, 0, 0), (2, 1, 1), (4, 2, 1), (2, 1, 1), (4, 2, 2)]
    assert backend.asked[3][3] == ["nope"]  # hours' second child is asked after seeing what the first tried
    assert outcome.expansions == 5 and outcome.decisions == 6  # the query and five expansions
    assert outcome.cost.tool_calls == 2
    # the trace: the query, then one iteration per expansion, the last holding the answer
    trace = outcome.trace.iterations
    assert len(trace) == 6 and trace[0].query == outcome.query.text and trace[-1].answer == "Here you are."
    assert trace[2].failed_stage == "execute" and trace[3].selection.rationale.endswith("back past this node")


def test_a_give_up_below_the_root_ends_the_search_as_in_toolbench(museum: Toolbox) -> None:
    outcome, backend = walk(museum, ["give_up", "call:" + HOURS])
    assert not outcome.solved and "tree was exhausted after 1 expansion" in outcome.error
    assert len(backend.asked) == 1


def test_each_node_makes_at_most_width_children(museum: Toolbox) -> None:
    # width 2: root's children "bad" and "bad"; each child tries 2 "bad" children of its own, and so on to
    # depth 12 (2 nodes per turn): a full binary tree of depth 6 below the root, 2+4+...+64 expansions
    outcome, backend = walk(museum, ["bad"] * 500, width=2, max_depth=12)
    assert not outcome.solved and outcome.expansions == sum(2**d for d in range(1, 7))
    assert max(depth for depth, *_ in backend.asked) == 10


def test_thoughts_add_one_tree_node_and_the_budget_stops_the_search(museum: Toolbox) -> None:
    outcome, backend = walk(museum, ["thought"] * 50, width=1, max_depth=3)
    assert [a[0] for a in backend.asked] == [0, 1, 2]  # one node per thought; depth 3 is a leaf
    outcome, backend = walk(museum, ["call:" + HOURS] * 50, cap=7)
    assert backend.decisions() == 7 and outcome.expansions == 6  # the query counts against the cap
    assert "budget of 7 model calls was spent" in outcome.error and not outcome.solved


def test_an_answer_before_any_successful_call_is_not_a_sample(museum: Toolbox) -> None:
    outcome, _ = walk(museum, ["answer"])
    assert not outcome.solved and "before any tool call succeeded" in outcome.error


# -- offline ------------------------------------------------------------------------------------


@pytest.mark.parametrize("envs", [["museum"], ["links"], ["museum", "links"]])
def test_offline_writes_only_solved_samples_and_every_one_replays(tmp_path: Path, envs: list[str]) -> None:
    s = settings(tmp_path, envs=envs)
    summary = generate_dfs_dataset(s)
    samples = list(read_samples(s.output, traces=True))
    # every attempted seed is either solved (written) or counted as failed, never both
    assert 0 < len(samples) <= s.n
    assert summary.new_samples == len(samples)
    assert sorted(summary.seeds + summary.failed_seeds) == s.seeds()
    assert [x.seed for x in samples] == summary.seeds
    per_seed = summary.config["per_seed"]
    assert [row["seed"] for row in per_seed] == s.seeds()
    assert [row["seed"] for row in per_seed if row["written"]] == summary.seeds
    assert all(row["error"] for row in per_seed if not row["written"])
    assert sum(row["tool_calls"] for row in per_seed) == summary.tool_calls
    certificate = certify_file(Path(s.output))
    # every solved sample replays; the offline query, written before any call, states only the
    # path/query/header values it pins, so its samples may fail the validity checks: counted,
    # and each failure named (the comparison reports it)
    assert certificate.checks["replay"] == len(samples)
    for verdict in certificate.samples:
        failed = [name for name, check in verdict.checks.items() if not check.ok]
        assert verdict.ok == (not failed) and all(verdict.checks[n].reason for n in failed)
    for sample, row in zip(samples, [r for r in per_seed if r["written"]], strict=True):
        assert sample.provenance.generator["method"] == "dfs"
        assert sample.provenance.llm == "offline"
        assert all(200 <= step.status < 300 for step in sample.steps())
        assert sample.trace.iterations[0].query == sample.query  # query first
        assert sample.trace.iterations[-1].answer == sample.answer  # Finish(give_answer)
        assert len(sample.trace.iterations) == row["decisions"]  # the query and one per expansion
        assert sample.cost.tool_calls == row["tool_calls"] >= len(sample.steps()) == row["steps"]
        assert sample.cost.model_calls == row["model_calls"] == 0


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
    for seed in range(10):
        pool = draw_pool(toolbox, 50, seed)
        assert len(pool) == 19  # the whole sampled set: petstore has fewer tools than B
        query = OfflineBackend(toolbox, DFSSettings()).write_query(seed, pool)
        assert 2 <= len(query.tools) <= 4 and set(query.tools) <= set(pool)
        assert not named_apis(query.text, forbidden)
        assert query == OfflineBackend(toolbox, DFSSettings()).write_query(seed, pool)


def test_the_pool_is_shown_in_the_order_drawn() -> None:
    # petstore has fewer tools than B, so every seed draws the whole set: only the order can tell
    # two seeds apart for a model at temperature 0, as with the answer-first mini-batch
    toolbox = Toolbox.in_process(["petstore"])
    pools = [draw_pool(toolbox, 50, seed) for seed in range(3)]
    assert all(sorted(pool) == toolbox.names() for pool in pools)
    assert len({tuple(pool) for pool in pools}) == 3
    assert draw_pool(toolbox, 50, 1) == pools[1]
    assert draw_pool(toolbox, 5, 1) == pools[1][:5]


def test_offline_decisions_keep_to_the_budget(tmp_path: Path) -> None:
    s = settings(tmp_path, n=6, max_model_calls=2)
    summary = generate_dfs_dataset(s)
    # the query and one expansion: one call can never run the 2-4 tools a query needs
    assert summary.new_samples == 0
    assert [row["decisions"] for row in summary.config["per_seed"]] == [2] * 6
    assert all("budget of 2 model calls" in row["error"] for row in summary.config["per_seed"])


# -- a model, over HTTP: the real openai client against the scripted server --------------------------


def _tokens(n: int) -> dict[str, int]:
    """Distinct token counts per reply, so that sums are exact."""
    return {"prompt_tokens": 1000 + 10 * n, "completion_tokens": 20 + n}


def _answer_from_results(request: dict[str, Any]) -> Any:
    """Finish(give_answer), quoting a value from each tool result in the conversation."""
    results = [m["content"] for m in request["messages"] if m["role"] == "tool"]
    day = re.search(r'"date":"([^"]+)"', results[0])
    event = re.search(r'"name":"([^"]+)"', results[1])
    assert day and event, results
    answer = f"The museum is open on '{day.group(1)}'; the special events include '{event.group(1)}'."
    return scripted.tool_call_reply((FINISH, {"return_type": "give_answer", "final_answer": answer}), **_tokens(7))


def test_a_model_search_is_counted_call_by_call_and_certifies(scripted_openai: Any, tmp_path: Path) -> None:
    s = settings(tmp_path, n=1, llm="openai", model=scripted_openai.model, base_url=scripted_openai.base_url)
    scripted_openai.script([
        # the query: it names an API, then is rewritten (two calls)
        scripted.json_reply({"query": f"Call {HOURS}, then list the events.", "tools": [HOURS, EVENTS]}, **_tokens(1)),
        scripted.json_reply({"query": "When is the museum open, and which special events are on?",
                             "tools": [HOURS, EVENTS]}, **_tokens(2)),
        # root -> the hours; there, a tool that does not exist; there, give up: back to the hours node
        scripted.tool_call_reply((HOURS, {}), content="First the opening hours.", **_tokens(3)),
        scripted.tool_call_reply(("museum__noSuchTool", {}), **_tokens(4)),
        scripted.tool_call_reply((FINISH, {"return_type": "give_up_and_restart"}), **_tokens(5)),
        # the hours node's second child (after the diversity prompt): the events; then the answer
        scripted.tool_call_reply((EVENTS, {}), **_tokens(6)),
    ], _answer_from_results)
    summary = generate_dfs_dataset(s)
    requests = scripted_openai.requests
    assert len(requests) == 7 and summary.new_samples == 1
    (row,) = summary.config["per_seed"]
    assert row["model_calls"] == row["http_requests"] == row["decisions"] == 7
    assert row["prompt_tokens"] == sum(_tokens(i)["prompt_tokens"] for i in range(1, 8))
    assert row["completion_tokens"] == sum(_tokens(i)["completion_tokens"] for i in range(1, 8))
    assert row["tool_calls"] == 2  # the made-up tool was never called
    (sample,) = read_samples(s.output, traces=True)
    assert certify_file(Path(s.output)).pass_rate == 1.0  # every check, the validity ones included
    assert sample.query == "When is the museum open, and which special events are on?"
    assert [step.tool for step in sample.steps()] == [HOURS, EVENTS]
    assert sample.answer.startswith("The museum is open on")
    assert sample.cost.model_calls == 7 and sample.provenance.cache_keys and sample.provenance.llm == "openai"
    # the solver is offered every tool of the sampled set, and Finish
    offered = {t["function"]["name"] for t in requests[2]["tools"]}
    assert len(offered) == MUSEUM_TOOLS + 1 and FINISH in offered and requests[2]["tool_choice"] == "auto"
    # ToolBench's conversation: system, request, then each turn and its result
    last = requests[6]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert last[2]["content"] == "First the opening hours." and last[2]["tool_calls"][0]["function"]["name"] == HOURS
    # the diversity prompt: at the hours node's second child, what its first child did; not inherited
    diverse = requests[5]["messages"][-1]
    assert diverse["role"] == "user" and "museum__noSuchTool" in diverse["content"] and "differs from all" in diverse["content"]
    assert not any("museum__noSuchTool" in str(m.get("content")) for m in last)


def test_a_model_that_never_finishes_spends_exactly_its_budget(scripted_openai: Any, tmp_path: Path) -> None:
    s = settings(tmp_path, n=2, llm="openai", model=scripted_openai.model, base_url=scripted_openai.base_url,
                 max_model_calls=6)

    def play(request: dict[str, Any]) -> Any:
        if request.get("response_format"):
            return scripted.json_reply({"query": "When is the museum open, and which events are on?",
                                        "tools": [HOURS, EVENTS]}, prompt_tokens=50, completion_tokens=9)
        return scripted.tool_call_reply((HOURS, {}), prompt_tokens=70, completion_tokens=5)

    scripted_openai.script(play)
    summary = generate_dfs_dataset(s)
    assert summary.new_samples == 0 and summary.failed_seeds == [0, 1]
    assert Path(s.output).read_bytes() == b""
    assert len(scripted_openai.requests) == 2 * 6  # a query and five expansions per seed, no more
    for row in summary.config["per_seed"]:
        assert (row["model_calls"], row["http_requests"], row["tool_calls"]) == (6, 6, 5)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (50 + 5 * 70, 9 + 5 * 5)
        assert "budget of 6 model calls was spent" in row["error"]
    assert (summary.model_calls, summary.prompt_tokens) == (12, 2 * (50 + 5 * 70))


def test_model_errors_and_gaps_are_counted_as_failed_attempts(scripted_openai: Any, tmp_path: Path) -> None:
    s = settings(tmp_path, n=1, llm="openai", model=scripted_openai.model, base_url=scripted_openai.base_url)
    scripted_openai.script([
        scripted.json_reply({"query": "When is the museum open, and which events are on?", "tools": [HOURS, EVENTS]},
                            prompt_tokens=40, completion_tokens=8),
        scripted.http_error(400, "the prompt is too long"),  # a refusal: a pruned child, the next one is tried
        scripted.text_reply("I think I should look at the hours.", prompt_tokens=30, completion_tokens=4),
        scripted.tool_call_reply((FINISH, {"return_type": "give_answer"}), prompt_tokens=31, completion_tokens=3),
        # below the Finish without an answer: give up (back past it); the thought's second child gives up too
        scripted.tool_call_reply((FINISH, {"return_type": "give_up_and_restart"}), prompt_tokens=32,
                                 completion_tokens=2),
        scripted.tool_call_reply((FINISH, {"return_type": "give_up_and_restart"}), prompt_tokens=33,
                                 completion_tokens=1),
    ])
    summary = generate_dfs_dataset(s)
    (row,) = summary.config["per_seed"]
    assert len(scripted_openai.requests) == 6 and row["model_calls"] == row["http_requests"] == 6
    assert not row["written"] and "tree was exhausted after 5 expansion(s)" in row["error"]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (40 + 30 + 31 + 32 + 33, 8 + 4 + 3 + 2 + 1)
    assert row["tool_calls"] == 0
    # the thought became a node, the Finish without an answer an error observation searched on
    below = scripted_openai.requests[4]["messages"]
    assert below[2] == {"role": "assistant", "content": "I think I should look at the hours."}
    assert below[-1]["role"] == "tool" and "final_answer" in orjson.loads(below[-1]["content"])["error"]
    assert FINISH in scripted_openai.requests[5]["messages"][-1]["content"]  # the diversity prompt

"""LLMPolicy's four modules driven by scripted model replies over real HTTP."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from simulator.tools import Tool
from tests.support.scripted_server import (
    Quirks,
    Reply,
    ScriptedOpenAI,
    json_reply,
    malformed_json,
    text_reply,
    tool_call_reply,
)
from toolgrad.backends.base import Completion, EndpointError
from toolgrad.backends.openai import CacheMiss, OpenAIChat
from toolgrad.loop.policy import Context, StageError, Workflow
from toolgrad.policies.model import prompts
from toolgrad.policies.model.policy import LLMPolicy, make_llm_policy, shared_chat
from toolgrad.records import Chain, Proposal, Selection, Step
from toolgrad.toolbox import BoundTool, Toolbox, ToolResult
from toolgrad.validity.checks import validity_problem
from toolgrad.validity.tool_terms import toolbox_terms


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> BoundTool:
    parameters = {"type": "object", "properties": properties, "required": required}
    tool = Tool(name=name, operation_id=name, method="GET", path=f"/{name}", description=description,
                parameters=parameters, bindings=())
    return BoundTool(f"petstore__{name}", "petstore", tool)


BATCH = [
    _tool("getPetById", "Find pet by ID. Returns a single pet.", {"petId": {"type": "integer"}}, ["petId"]),
    _tool("findPetsByStatus", "Finds pets by status.",
          {"status": {"type": "string", "enum": ["available", "pending", "sold"]}}, ["status"]),
    _tool("getInventory", "Returns pet inventories by status.", {}, []),
]
GET_PET, FIND, INVENTORY = (b.name for b in BATCH)
STEP = Step(env="petstore", tool=FIND, operation_id="findPetsByStatus", arguments={"status": "sold"},
            status=200, response=[{"id": 7, "name": "Rex"}], state_hash="h0")


def context(workflow: Workflow | None = None, *, k: int = 2, steps: int = 3, iteration: int = 0) -> Context:
    return Context(seed=1, iteration=iteration, batch=BATCH, workflow=workflow or Workflow(), k=k,
                   max_agent_steps=steps)


def policy_for(server: ScriptedOpenAI, **kw: Any) -> LLMPolicy:
    chat = OpenAIChat(server.model, server.base_url, api_key="sk-test", timeout=5, sleep=lambda s: None)
    return LLMPolicy(chat, **kw)


class FakeCalls:
    """The loop's ``call`` function: records calls, answers from a table."""

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        self.calls.append((name, arguments))
        body = self.answers.get(name, {"id": 7, "name": "Rex", "status": "sold"})
        return ToolResult(name, arguments, 200, body, f"h{len(self.calls)}")


# -- Proposer -------------------------------------------------------------------------------------


def test_proposer_asks_for_proposals_over_the_batch(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(json_reply({"proposals": [
        {"instruction": "Find the sold pets, then look at the first one.", "tools": [FIND, GET_PET, FIND]},
        {"instruction": "Check the inventory.", "tools": [INVENTORY]},
    ]}))
    workflow = Workflow(chains=[Chain(steps=[STEP])], query="Which pets were sold?", answer="Rex.")
    proposals = policy_for(scripted_openai).propose(context(workflow))
    assert proposals == [Proposal(instruction="Find the sold pets, then look at the first one.", tools=[FIND, GET_PET]),
                         Proposal(instruction="Check the inventory.", tools=[INVENTORY])]
    (request,) = scripted_openai.requests
    user = request["messages"][1]["content"]
    assert f"- {GET_PET}(petId*: int): Find pet by ID." in user
    assert f"- {FIND}(status*: available|pending|sold)" in user
    assert '[chain 0 step 0] petstore__findPetsByStatus({"status":"sold"}) -> 200 [{"id":7,"name":"Rex"}]' in user
    assert "Write 2 different tasks" in user
    schema = request["response_format"]["json_schema"]["schema"]
    items = schema["properties"]["proposals"]["items"]
    assert items["properties"]["tools"]["items"]["enum"] == [GET_PET, FIND, INVENTORY]
    assert schema["properties"]["proposals"]["maxItems"] == 2


def test_proposer_sees_every_tool_of_the_batch_even_past_the_budget(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(json_reply({"proposals": [{"instruction": "Look up pet 7.", "tools": [GET_PET]}]}))
    policy_for(scripted_openai, tools_budget=60).propose(context())
    user = scripted_openai.requests[0]["messages"][1]["content"]
    # descriptions give way to the budget; tools and their required arguments never do
    assert f"- {GET_PET}(petId*: int)\n" in user and "Find pet by ID" not in user
    assert all(b.name in user for b in BATCH)
    enum = scripted_openai.requests[0]["response_format"]["json_schema"]["schema"]["properties"]["proposals"]["items"]
    assert enum["properties"]["tools"]["items"]["enum"] == [GET_PET, FIND, INVENTORY]


def test_a_batch_of_fifty_tools_fits_the_default_budget_with_descriptions() -> None:
    toolbox = Toolbox.in_process(["petstore", "crm", "adafruit", "museum"])
    specs = [toolbox.tools[n].openai() for n in toolbox.names()[:50]]
    text, shown = prompts.render_tools(specs, LLMPolicy.__init__.__kwdefaults__["tools_budget"])
    assert len(shown) == 50 and text.count("\n") == 49, "one line per tool, all fifty"
    assert sum(": " in line.split(")")[-1] for line in text.splitlines()) >= 40, "most keep a description"


def test_proposer_failure_is_a_stage_error(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(*[malformed_json()] * 3)
    with pytest.raises(StageError) as error:
        policy_for(scripted_openai).propose(context())
    assert error.value.stage == "propose" and "no valid structured output" in error.value.reason


# -- Executor -------------------------------------------------------------------------------------


def test_executor_makes_real_calls_and_feeds_results_back(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.reset(quirks=Quirks.llama_cpp())
    scripted_openai.script(tool_call_reply((FIND, {"status": "sold"})),
                           tool_call_reply((GET_PET, {"petId": 7})),
                           text_reply("Rex was sold."))
    calls = FakeCalls({FIND: [{"id": 7, "name": "Rex"}]})
    proposal = Proposal(instruction="Find a sold pet and show it.", tools=[FIND, GET_PET])
    executed = policy_for(scripted_openai).execute(context(), proposal, calls)
    assert calls.calls == [(FIND, {"status": "sold"}), (GET_PET, {"petId": 7})]
    assert [e.result.tool for e in executed] == [FIND, GET_PET]
    first, second, third = scripted_openai.requests
    assert [t["function"]["name"] for t in first["tools"]] == [FIND, GET_PET]
    assert first["tool_choice"] == "auto"
    assert first["messages"][1]["content"] == "Task: Find a sold pet and show it."
    assistant, tool = second["messages"][2:4]
    assert assistant["content"] == "" and assistant["tool_calls"][0]["function"]["name"] == FIND
    assert tool == {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"],
                    "content": '{"status":200,"body":[{"id":7,"name":"Rex"}]}'}
    assert len(third["messages"]) == 6 and scripted_openai.rejected == []


def test_executor_names_the_first_tool_when_the_model_will_not_call(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(text_reply("I would look up the pet."), tool_call_reply((GET_PET, {"petId": 7})),
                           text_reply("Done."))
    calls = FakeCalls()
    executed = policy_for(scripted_openai).execute(context(), Proposal(instruction="Show pet 7.", tools=[GET_PET]),
                                                   calls)
    assert len(executed) == 1
    choices = [r["tool_choice"] for r in scripted_openai.requests]
    assert choices == ["auto", {"type": "function", "function": {"name": GET_PET}}, "auto"]
    # the unhelpful first answer is not part of the conversation
    assert len(scripted_openai.requests[1]["messages"]) == 2


def test_executor_stops_at_the_step_limit(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(tool_call_reply((GET_PET, {"petId": 1}), (GET_PET, {"petId": 2})),
                           tool_call_reply((GET_PET, {"petId": 3})))
    calls = FakeCalls()
    executed = policy_for(scripted_openai).execute(context(steps=2),
                                                   Proposal(instruction="Show pets.", tools=[GET_PET]), calls)
    assert [args for _, args in calls.calls] == [{"petId": 1}, {"petId": 2}]
    assert len(executed) == 2 and len(scripted_openai.requests) == 1  # no turn after the last step


def test_executor_does_not_make_calls_outside_the_proposal(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(tool_call_reply((INVENTORY, {}), (GET_PET, "not json")),
                           tool_call_reply((GET_PET, {"petId": 7})), text_reply("Done."))
    calls = FakeCalls()
    policy_for(scripted_openai).execute(context(), Proposal(instruction="Show pet 7.", tools=[GET_PET]), calls)
    assert calls.calls == [(GET_PET, {"petId": 7})]
    results = [m["content"] for m in scripted_openai.requests[1]["messages"] if m["role"] == "tool"]
    assert results == [f'{{"error":"unknown tool \'{INVENTORY}\'; use one of: {GET_PET}"}}',
                       '{"error":"the arguments must be a JSON object"}']


def test_executor_model_failure_is_a_stage_error(scripted_openai: ScriptedOpenAI) -> None:
    """A request the server refuses (HTTP 400: the prompt is too long) fails this stage only."""
    scripted_openai.script(Reply(status=400, error="Requested tokens exceed context window"))
    with pytest.raises(StageError) as error:
        policy_for(scripted_openai).execute(context(), Proposal(instruction="x", tools=[GET_PET]), FakeCalls())
    assert error.value.stage == "execute" and "model error" in error.value.reason


def test_a_failed_endpoint_stops_the_run_instead_of_failing_a_stage(scripted_openai: ScriptedOpenAI) -> None:
    """HTTP 500 on every retry: every later request would fail too, so it is not a stage error."""
    scripted_openai.script(*[tool_call_reply((GET_PET, {"petId": 1}), status=500)] * 5)
    with pytest.raises(EndpointError, match="no answer after 5 attempts: HTTP 500"):
        policy_for(scripted_openai).execute(context(), Proposal(instruction="x", tools=[GET_PET]), FakeCalls())


# -- Selector -------------------------------------------------------------------------------------


def test_selector_picks_a_candidate_with_a_rationale(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(
        json_reply({"proposals": [{"instruction": "Find sold pets.", "tools": [FIND]},
                                  {"instruction": "Check the inventory.", "tools": [INVENTORY]}]}),
        json_reply({"choice": 1, "action": "extend", "chain": 0, "rationale": "Counts complete the picture."}))
    workflow = Workflow(chains=[Chain(steps=[STEP])], query="q", answer="a")
    policy = policy_for(scripted_openai)
    ctx = context(workflow)
    policy.propose(ctx)
    inventory = STEP.model_copy(update={"tool": INVENTORY, "arguments": {}, "response": {"sold": 3}})
    selection = policy.select(ctx, [(0, [STEP]), (1, [inventory])])
    assert selection == Selection(proposal=1, action="extend", chain=0, rationale="Counts complete the picture.")
    request = scripted_openai.requests[1]
    assert "[1] Check the inventory.\n  call petstore__getInventory({}) -> 200" in request["messages"][1]["content"]
    properties = request["response_format"]["json_schema"]["schema"]["properties"]
    assert properties["choice"] == {"enum": [0, 1, None]}
    assert properties["action"] == {"enum": ["extend", "new", "reject"]}
    assert properties["chain"] == {"enum": [0, None]}


def test_selector_reject_and_no_extend_without_chains(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(json_reply({"choice": 0, "action": "reject", "chain": None, "rationale": "Useless."}))
    selection = policy_for(scripted_openai).select(context(), [(0, [STEP])])
    assert selection == Selection(proposal=None, action="reject", chain=None, rationale="Useless.")
    schema = scripted_openai.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["action"] == {"enum": ["new", "reject"]}


def test_selector_choice_outside_the_candidates_is_repaired(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(json_reply({"choice": 5, "action": "new", "chain": None, "rationale": "r"}),
                           json_reply({"choice": 0, "action": "new", "chain": None, "rationale": "r"}))
    assert policy_for(scripted_openai).select(context(), [(0, [STEP])]).proposal == 0
    assert "5 is not one of" in scripted_openai.requests[1]["messages"][-1]["content"]


# -- Updater --------------------------------------------------------------------------------------


def test_updater_writes_query_and_answer(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(json_reply({"query": " Which pet was sold? ", "answer": "Rex (id 7) was sold."}))
    workflow = Workflow(chains=[Chain(steps=[STEP])])
    selection = Selection(proposal=0, action="new", rationale="Starts the story.")
    query, answer = policy_for(scripted_openai).update(context(), selection, workflow)
    assert (query, answer) == ("Which pet was sold?", "Rex (id 7) was sold.")
    user = scripted_openai.requests[0]["messages"][1]["content"]
    assert "Why the last calls were added: Starts the story." in user and "Previous request" not in user


def test_updater_rewrites_a_query_that_names_a_tool(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(json_reply({"query": "Call findPetsByStatus for sold pets.", "answer": "Rex."}),
                           json_reply({"query": "Which pets were sold?", "answer": "Rex."}))
    query, _ = policy_for(scripted_openai).update(
        context(), Selection(proposal=0, action="new", rationale=""), Workflow(chains=[Chain(steps=[STEP])]))
    assert query == "Which pets were sold?"
    assert "the query names API(s): findPetsByStatus" in scripted_openai.requests[1]["messages"][-1]["content"]


def test_updater_rewrites_a_query_with_no_words(scripted_openai: ScriptedOpenAI) -> None:
    # bad input: the model answered with a number for the user's request
    scripted_openai.script(json_reply({"query": "10.2", "answer": "456789"}),
                           json_reply({"query": "What is on the board?", "answer": "An empty board."}))
    query, _ = policy_for(scripted_openai).update(
        context(), Selection(proposal=0, action="new", rationale=""), Workflow(chains=[Chain(steps=[STEP])]))
    assert query == "What is on the board?"
    assert "the query has no words" in scripted_openai.requests[1]["messages"][-1]["content"]


def test_updater_rewrites_what_the_validity_checks_reject(scripted_openai: ScriptedOpenAI) -> None:
    # bad input, twice: a request that leaves the status unstated, then an answer with an id
    # (8) that no response holds; the loop's own check names each problem to the model
    scripted_openai.script(json_reply({"query": "Show me some pets.", "answer": "Rex (id 7)."}),
                           json_reply({"query": "Which pets were sold?", "answer": "Rex (id 8)."}),
                           json_reply({"query": "Which pets were sold?", "answer": "Rex (id 7)."}))
    terms = toolbox_terms(Toolbox.in_process(["petstore"]))
    ctx = replace(context(), check_text=lambda w, q, a: validity_problem(w.chains, q, a, terms))
    query, answer = policy_for(scripted_openai).update(
        ctx, Selection(proposal=0, action="new", rationale=""), Workflow(chains=[Chain(steps=[STEP])]))
    assert (query, answer) == ("Which pets were sold?", "Rex (id 7).")
    first, second = (r["messages"][-1]["content"] for r in scripted_openai.requests[1:])
    assert "solvable at chain 0 step 0, /status = 'sold'" in first
    assert "grounded" in second and "'8'" in second


# -- accounting, the factory, record and replay -----------------------------------------------------


def test_cost_and_cache_keys_are_per_policy(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(lambda request: json_reply({"query": "Which pet is it?", "answer": "a.", "n": len(request["messages"])},
                                                      prompt_tokens=5, completion_tokens=2))
    chat = OpenAIChat(scripted_openai.model, scripted_openai.base_url, api_key="k", sleep=lambda s: None)
    one, two = LLMPolicy(chat), LLMPolicy(chat)
    selection = Selection(proposal=0, action="new", rationale="")
    one.update(context(), selection, Workflow(chains=[Chain(steps=[STEP])]))
    two.update(context(), selection, Workflow(chains=[Chain(steps=[STEP, STEP])]))
    two.update(context(), selection, Workflow(chains=[Chain(steps=[STEP, STEP, STEP])]))
    assert one.cost().model_dump() == {"model_calls": 1, "prompt_tokens": 5, "completion_tokens": 2, "tool_calls": 0}
    assert two.cost().model_calls == 2 and len(two.cache_keys()) == 2
    assert set(one.cache_keys()).isdisjoint(two.cache_keys())
    assert chat.usage().calls == 3


def test_a_chat_model_without_usage_is_counted_by_the_policy() -> None:
    class Canned:
        model, base_url = "canned", "none"

        def complete(self, messages: list[dict[str, Any]], **kw: Any) -> Completion:
            return Completion(content='{"query": "Which pet is it?", "answer": "a."}', prompt_tokens=4, completion_tokens=3,
                              cache_key="k1")

    policy = LLMPolicy(Canned())
    policy.update(context(), Selection(proposal=0, action="new", rationale=""), Workflow(chains=[Chain(steps=[STEP])]))
    assert policy.cost().model_dump() == {"model_calls": 1, "prompt_tokens": 4, "completion_tokens": 3, "tool_calls": 0}
    assert policy.cache_keys() == ["k1"]


def _one_iteration(policy: Any, calls: FakeCalls) -> list[Any]:
    ctx = context(k=1)
    proposals = policy.propose(ctx)
    executed = policy.execute(ctx, proposals[0], calls)
    steps = [STEP.model_copy(update={"tool": e.result.tool, "arguments": e.result.arguments}) for e in executed]
    selection = policy.select(ctx, [(0, steps)])
    query_answer = policy.update(ctx, selection, Workflow(chains=[Chain(steps=steps)]))
    return [proposals, [e.result for e in executed], selection, query_answer, policy.cost(), policy.cache_keys()]


def test_make_llm_policy_records_then_replays_an_iteration_without_the_server(tmp_path: Path) -> None:
    script = [json_reply({"proposals": [{"instruction": "Show pet 7.", "tools": [GET_PET]}]}),
              tool_call_reply((GET_PET, {"petId": 7})), text_reply("Rex."),
              json_reply({"choice": 0, "action": "new", "chain": None, "rationale": "Good."}),
              json_reply({"query": "Tell me about pet 7.", "answer": "Pet 7 is Rex."})]
    cache_dir = str(tmp_path / "cache")
    with ScriptedOpenAI(script, quirks=Quirks.llama_cpp()) as server:
        policy = make_llm_policy(server.model, server.base_url, cache_dir, False, timeout=5, api_key="k",
                                 temperatures={"propose": 0.7})
        other = make_llm_policy(server.model, server.base_url, cache_dir, False, timeout=5, api_key="k")
        assert isinstance(policy, LLMPolicy) and isinstance(other, LLMPolicy)
        assert other.chat is not policy.chat  # a fresh scope per sample, over one shared client
        assert shared_chat(server.model, server.base_url, cache_dir, False, timeout=5, api_key="k").usage().calls == 0
        recorded = _one_iteration(policy, FakeCalls())
        base_url, received = server.base_url, len(server.requests)
    assert server.remaining == 0 and received == 6  # the json_schema probe, then the five replies
    assert server.requests[0]["temperature"] == 0.7
    replayed_policy = make_llm_policy(server.model, base_url, cache_dir, True, temperatures={"propose": 0.7})
    replay_calls = FakeCalls()
    assert _one_iteration(replayed_policy, replay_calls) == recorded
    assert replay_calls.calls == [(GET_PET, {"petId": 7})]  # tool calls are real again; the model is not
    assert isinstance(replayed_policy, LLMPolicy)
    usage = replayed_policy.usage()
    assert (usage.requests, usage.cache_hits, usage.calls) == (0, 5, 5)
    assert json.loads(json.dumps(recorded[4].model_dump()))["model_calls"] == 5


def test_a_replay_miss_propagates_instead_of_failing_the_stage(tmp_path: Path) -> None:
    policy = make_llm_policy("m", "http://127.0.0.1:9/v1", str(tmp_path), True)
    with pytest.raises(CacheMiss):
        policy.propose(context())


def test_real_toolbox_executes_the_proposal(scripted_openai: ScriptedOpenAI) -> None:
    from toolgrad.toolbox import Toolbox

    toolbox = Toolbox.in_process(["petstore"])
    try:
        name = next(n for n in toolbox.names() if n.endswith("getInventory"))
        scripted_openai.script(tool_call_reply((name, {})), text_reply("Here is the inventory."))
        ctx = Context(seed=0, iteration=0, batch=[toolbox.tools[name]], workflow=Workflow(), k=1, max_agent_steps=2)
        toolbox.reset("s")
        executed = policy_for(scripted_openai).execute(
            ctx, Proposal(instruction="How many pets are in stock?", tools=[name]),
            lambda tool, args: toolbox.call("s", tool, args))
        assert len(executed) == 1 and executed[0].result.ok, executed[0].result
        tool_message = scripted_openai.requests[1]["messages"][-1]
        assert tool_message["content"] == executed[0].result.content()[:400]
    finally:
        toolbox.close()


def test_compact_tool_spec_clips_descriptions_and_drops_format_bounds() -> None:
    from toolgrad.policies.model.prompts import compact_tool_spec

    spec = {"type": "function", "function": {"name": "t", "description": "d" * 500, "parameters": {
        "type": "object", "properties": {
            "id": {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1},
            "age": {"type": "integer", "minimum": 0, "maximum": 30, "description": "years"}}}}}
    compact = compact_tool_spec(spec)
    assert len(compact["function"]["description"]) == 160
    assert compact["function"]["parameters"]["properties"] == {
        "id": {"type": "integer", "format": "int64"},
        "age": {"type": "integer", "minimum": 0, "maximum": 30, "description": "years"}}


def test_replay_only_miss_stops_the_whole_run_with_exit_2(tmp_path: Path) -> None:
    # bad input: --replay-only with an empty cache; nothing may be recorded as a failed stage
    import subprocess
    import sys

    out = tmp_path / "data.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli.app", "generate", "--env", "petstore", "--n", "2", "--seed", "0",
         "--llm", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
         "--cache", str(tmp_path / "cache"), "--replay-only", "-o", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cache miss" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() or out.read_text() == ""

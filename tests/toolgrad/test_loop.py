"""The loop: the validator, argument sources, the query check, the trace of every stage,
failed stages, and the fork that becomes the sample's state (checked by replay)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from toolgrad.backends.base import ModelError
from toolgrad.dataset.lines import build_record
from toolgrad.loop.policy import (
    CallFn,
    Context,
    ExecutedCall,
    StageError,
    Workflow,
    named_apis,
    query_problem,
)
from toolgrad.loop.sample import (
    GeneratorConfig,
    SampleOutcome,
    api_names,
    draw_batch,
    run_sample,
)
from toolgrad.loop.sources import detect_sources, find_pointer
from toolgrad.loop.validator import failure_reason
from toolgrad.policies.offline.policy import OfflinePolicy
from toolgrad.records import Proposal, Provenance, Sample, Selection, Step
from toolgrad.toolbox import Toolbox, ToolResult

Replay = Callable[[Sample], list[str]]


@pytest.fixture(scope="module")
def petstore() -> Toolbox:
    return Toolbox.in_process(["petstore"])


def result(status: int, body: Any, error: str = "") -> ToolResult:
    return ToolResult("env__op", {}, status, body, "h" if status else "", error)


def as_sample(outcome: SampleOutcome) -> Sample:
    return build_record(outcome, Provenance(environments={}, generator={"environments": ["petstore"]}, llm="test"))[0]


# -- the validator ------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "body", "error", "why"), [
    (0, None, "unknown tool", "call not made"),
    (404, {"title": "Not Found"}, "", "HTTP 404"),
    (500, {"id": 1}, "", "HTTP 500"),
    (200, "  ", "", "empty response"),
    (200, [], "", "empty response"),
    (200, {}, "", "empty response"),
    (200, {"message": "nope"}, "", "error-like"),
    (200, {"error": "bad", "detail": "x"}, "", "error-like"),
    (200, {"id": 3, "error": "quota exceeded"}, "", "error-like"),
    (200, "Error: nothing here", "", "error-like"),
])
def test_validator_fails(status: int, body: Any, error: str, why: str) -> None:
    assert why in failure_reason(result(status, body, error))


@pytest.mark.parametrize("body", [{"id": 3, "name": "doggie"}, [{"id": 1}], "pong", 0, {"code": 200, "message": "ok",
                                                                                       "type": "unknown"},
                                  {"id": 3, "error": None}])
def test_validator_passes(body: Any) -> None:
    assert failure_reason(result(200, body)) == ""


@pytest.mark.parametrize("status", [200, 204])
def test_validator_passes_a_write_with_no_body_by_design(status: int) -> None:
    # no body at all (None) is what a documented no-content response sends, e.g. a 204 delete
    assert failure_reason(result(status, None)) == "", f"HTTP {status} with no body should pass"


# -- argument sources ---------------------------------------------------------------------------


def test_sources_latest_earlier_step_wins_and_trivial_values_are_ignored() -> None:
    earlier = [(0, 0, [{"id": 12, "name": "rex"}]), (0, 1, {"pet": {"id": 12}, "a/b": "rex"})]
    found = detect_sources({"petId": 12, "name": "rex", "flag": True, "quantity": 1, "tag": "zz"}, earlier)
    assert found["/petId"].model_dump() == {"chain": 0, "step": 1, "pointer": "/pet/id"}
    assert found["/name"].pointer == "/a~1b"  # escaped per RFC 6901
    assert set(found) == {"/petId", "/name"}


def test_sources_match_numeric_path_strings_and_related_keys_first() -> None:
    body = {"orderId": 7, "items": [{"count": 7}], "id": 7}
    assert find_pointer(body, "orderId", "7") == "/orderId"
    assert find_pointer(body, "petId", 7) == "/id"
    assert find_pointer(body, "x", 8) is None


def test_declared_sources_are_kept_only_when_they_hold() -> None:
    earlier = [(0, 0, {"id": 5, "other": 5})]
    kept = detect_sources({"petId": 5}, earlier, {"petId": (0, 0, "/other")})
    assert kept["/petId"].pointer == "/other"
    wrong = detect_sources({"petId": 5}, earlier, {"/petId": (0, 0, "/missing")})
    assert wrong["/petId"].pointer == "/id"  # the declared one did not resolve: auto-detected


# -- batches and the query check ----------------------------------------------------------------


def test_batches_are_seeded_by_sample_and_iteration(petstore: Toolbox) -> None:
    names = petstore.names()
    assert draw_batch(names, 5, 1, 0) == draw_batch(list(reversed(names)), 5, 1, 0)
    assert draw_batch(names, 5, 1, 0) != draw_batch(names, 5, 1, 1)
    assert sorted(draw_batch(names, 500, 1, 0)) == sorted(names)


def test_query_check_finds_tool_and_operation_names(petstore: Toolbox) -> None:
    names = api_names(petstore)
    assert named_apis("Call petstore__getPetById now", names)
    assert named_apis("use getPetById for pet 3", names) == ["getPetById"]
    assert named_apis("Find the pet with ID 3 and tell me its name.", names) == []
    # a model that rewrites the separators still names the tool (SmolLM2 wrote this one)
    assert named_apis("tictactoe_get-board({}) -> 200", ["tictactoe__get-board"]) == ["tictactoe__get-board"]
    assert named_apis("'tictactoe__get-board.json'", ["tictactoe__get-board"]) == ["tictactoe__get-board"]
    assert named_apis("a get-boards list", ["get-board"]) == []
    assert named_apis("call find-pets-by-status", ["petstore__findPetsByStatus", "find_pets_by_status"]) == [
        "find_pets_by_status"]


# -- the loop with test doubles ------------------------------------------------------------------


class FailAt(OfflinePolicy):
    """The offline policy, failing one stage at one iteration (a test double)."""

    def __init__(self, toolbox: Toolbox, stage: str, iteration: int, exc: type[Exception] = StageError) -> None:
        super().__init__(toolbox, target_calls=50)
        self.stage, self.at, self.exc = stage, iteration, exc

    def _maybe_fail(self, ctx: Context, stage: str) -> None:
        if ctx.iteration == self.at and stage == self.stage:
            raise (StageError(stage, f"scripted {stage} failure") if self.exc is StageError
                   else self.exc(f"scripted {stage} failure"))

    def propose(self, ctx: Context) -> list[Proposal]:
        self._maybe_fail(ctx, "propose")
        return super().propose(ctx)

    def execute(self, ctx: Context, proposal: Proposal, call: CallFn) -> list[ExecutedCall]:
        self._maybe_fail(ctx, "execute")
        return super().execute(ctx, proposal, call)

    def select(self, ctx: Context, candidates: list[tuple[int, list[Step]]]) -> Selection:
        self._maybe_fail(ctx, "select")
        return super().select(ctx, candidates)

    def update(self, ctx: Context, selection: Selection, workflow: Workflow) -> tuple[str, str]:
        self._maybe_fail(ctx, "update")
        return super().update(ctx, selection, workflow)


def test_every_stage_is_recorded(petstore: Toolbox, replay: Replay) -> None:
    outcome = run_sample(petstore, OfflinePolicy(petstore, target_calls=50), 3, GeneratorConfig(iterations=3))
    assert [it.iteration for it in outcome.trace.iterations] == [0, 1, 2]
    assert outcome.ok
    for it in outcome.trace.iterations:
        assert it.batch and it.proposals and it.executions and it.selection is not None
        assert it.failed_stage is None and it.query and it.answer
        assert len(it.executions) == len(it.proposals)
        assert all(e.ok == (e.reason == "") for e in it.executions)
    assert replay(as_sample(outcome)) == []


@pytest.mark.parametrize("stage", ["propose", "execute", "select", "update"])
@pytest.mark.parametrize("exc", [StageError, ModelError])
def test_a_failed_stage_is_recorded_and_skipped(petstore: Toolbox, replay: Replay, stage: str,
                                                exc: type[Exception]) -> None:
    config = GeneratorConfig(iterations=3)
    outcome = run_sample(petstore, FailAt(petstore, stage, 1, exc), 3, config)
    failed = outcome.trace.iterations[1]
    assert failed.failed_stage == stage
    assert "scripted" in failed.error
    assert failed.query is None
    if stage == "execute":
        assert failed.executions and not any(e.ok for e in failed.executions)
    assert outcome.trace.iterations[0].failed_stage is None
    assert outcome.trace.iterations[2].failed_stage is None
    # the failed iteration left no trace in the workflow: it still replays
    assert replay(as_sample(outcome)) == []


def test_a_seed_with_no_successful_update_is_not_ok(petstore: Toolbox) -> None:
    class NeverUpdates(OfflinePolicy):
        def update(self, ctx: Context, selection: Selection, workflow: Workflow) -> tuple[str, str]:
            raise StageError("update", "no words")

    outcome = run_sample(petstore, NeverUpdates(petstore), 1, GeneratorConfig(iterations=2))
    assert not outcome.ok
    assert [it.failed_stage for it in outcome.trace.iterations] == ["update", "update"]


def test_a_query_naming_an_api_fails_the_update(petstore: Toolbox) -> None:
    class NamesTools(OfflinePolicy):
        def update(self, ctx: Context, selection: Selection, workflow: Workflow) -> tuple[str, str]:
            query, answer = super().update(ctx, selection, workflow)
            return f"{query} (use {workflow.chains[0].steps[0].operation_id})", answer

    outcome = run_sample(petstore, NamesTools(petstore), 2, GeneratorConfig(iterations=2))
    assert not outcome.ok
    for it in outcome.trace.iterations:
        assert it.failed_stage == "update"
        assert "names API" in it.error


@pytest.mark.parametrize("query", ["10.2", "  &#34; ... &#34;  ", "{}"])
def test_a_query_with_no_words_fails_the_update(petstore: Toolbox, query: str) -> None:
    # bad input: what SmolLM2-135M wrote as the user's request (a number, escaped punctuation)
    class Garbles(OfflinePolicy):
        def update(self, ctx: Context, selection: Selection, workflow: Workflow) -> tuple[str, str]:
            return query, super().update(ctx, selection, workflow)[1]

    outcome = run_sample(petstore, Garbles(petstore), 2, GeneratorConfig(iterations=2))
    assert not outcome.ok
    assert [it.error for it in outcome.trace.iterations] == ["the query has no words"] * 2


def test_a_query_in_a_script_without_spaces_has_words() -> None:
    assert query_problem("上海的天气怎么样？", "晴。", []) == ""
    assert query_problem("Pet 7?", "Rex.", []) == ""
    assert query_problem("7?", "Rex.", []) == "the query has no words"


def test_a_rejection_is_not_a_failure(petstore: Toolbox) -> None:
    class Picky(OfflinePolicy):
        def select(self, ctx: Context, candidates: list[tuple[int, list[Step]]]) -> Selection:
            if ctx.iteration == 1:
                return Selection(proposal=None, action="reject", rationale="nothing new")
            return super().select(ctx, candidates)

    outcome = run_sample(petstore, Picky(petstore, target_calls=50), 4, GeneratorConfig(iterations=3))
    rejected = outcome.trace.iterations[1]
    assert rejected.selection is not None and rejected.selection.action == "reject"
    assert rejected.failed_stage is None and rejected.query is None


def test_extending_an_older_chain_in_the_same_env_becomes_a_new_chain(petstore: Toolbox, replay: Replay) -> None:
    class ExtendsFirst(OfflinePolicy):
        def select(self, ctx: Context, candidates: list[tuple[int, list[Step]]]) -> Selection:
            chosen = super().select(ctx, candidates)
            if chosen.proposal is None:
                return chosen
            if len(ctx.workflow.chains) >= 2:
                return Selection(proposal=chosen.proposal, action="extend", chain=0, rationale="extend the first")
            return Selection(proposal=chosen.proposal, action="new", rationale="separate task")

    outcome = run_sample(petstore, ExtendsFirst(petstore, target_calls=50), 6, GeneratorConfig(iterations=3))
    third = outcome.trace.iterations[2]
    assert third.selection is not None and third.selection.action == "new"
    assert "out of execution order" in third.selection.rationale
    assert len(outcome.workflow.chains) == 3
    assert replay(as_sample(outcome)) == []


class OverReach(OfflinePolicy):
    """Calls a tool outside its proposal, then one call too many (a test double)."""

    def execute(self, ctx: Context, proposal: Proposal, call: CallFn) -> list[ExecutedCall]:
        outside = next(n for n in self.toolbox.names() if n not in proposal.tools)
        first = call(outside, {})
        return [ExecutedCall(first), *(ExecutedCall(call(proposal.tools[0], {})) for _ in range(3))]


def test_calls_outside_the_proposal_or_past_the_step_limit_are_not_made(petstore: Toolbox) -> None:
    outcome = run_sample(petstore, OverReach(petstore), 1, GeneratorConfig(iterations=1))
    execution = outcome.trace.iterations[0].executions[0]
    assert not execution.ok
    assert execution.steps[0].status == 0
    assert "not part of this proposal" in execution.reason
    assert len(execution.steps) == 4 and execution.steps[3].status == 0
    assert outcome.trace.iterations[0].failed_stage == "execute"


def test_cost_counts_every_call_made(petstore: Toolbox) -> None:
    outcome = run_sample(petstore, OfflinePolicy(petstore), 2, GeneratorConfig(iterations=3))
    made = sum(len(e.steps) for it in outcome.trace.iterations for e in it.executions)
    assert outcome.cost.tool_calls == made
    assert outcome.cost.model_calls == 0


def test_sources_reach_into_bodies_and_schema_1_keys_read_as_pointers() -> None:
    earlier = [(0, 0, {"dashboard": {"key": "dash-77"}, "feeds": [{"key": "feed-1"}, {"key": "feed-2"}]})]
    found = detect_sources({"body": {"dashboard_id": "dash-77", "feeds": ["feed-2"]}, "n": 1}, earlier)
    assert {k: v.pointer for k, v in found.items()} == {"/body/dashboard_id": "/dashboard/key",
                                                         "/body/feeds/0": "/feeds/1/key"}
    old = Step.model_validate({"env": "e", "tool": "t", "operation_id": "o", "arguments": {"petId": 1},
                               "sources": {"petId": {"chain": 0, "step": 0, "pointer": "/id"}},
                               "status": 200, "response": None, "state_hash": ""})
    assert list(old.sources) == ["/petId"]  # schema 1 keyed sources by argument name
    with pytest.raises(ValueError, match="schema version '9' is not one this toolgrad reads"):
        Sample.model_validate({"schema_version": "9"})

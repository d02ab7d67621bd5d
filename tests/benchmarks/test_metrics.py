"""Metrics on hand-made cases: each test says what went in and what must come out."""

from __future__ import annotations

import pytest

from benchmarks.evaluate.call_lists import check_call, score_call_list
from benchmarks.evaluate.metrics import (
    Attempt,
    Call,
    Reference,
    SampleScores,
    TrialScore,
    aggregate,
    argument_accuracy,
    contains_token,
    error_breakdown,
    key_values,
    match_calls,
    outcome_match,
    pass_hat_k,
    per_environment,
    qor_proxy,
    score_trial,
    success_rate,
    tool_precision,
    tool_recall,
    values_match,
)

H0, H1, H2 = "h0", "h1", "h2"


def ref_call(tool: str, status: int = 200, wrote: bool = False, **args: object) -> Call:
    return Call(tool, dict(args), status, env="pets", wrote=wrote)


def test_recall_and_precision_over_tool_name_sets() -> None:
    # reference {a, b}; the model called a twice and c once: recall 1/2, precision 1/2
    assert tool_recall(["a", "b"], ["a", "a", "c"]) == 0.5
    assert tool_precision(["a", "b"], ["a", "a", "c"]) == 0.5
    # nothing called: recall 0, precision 0 (by convention, when the reference is not empty)
    assert tool_recall(["a"], []) == 0.0
    assert tool_precision(["a"], []) == 0.0
    # both empty: nothing was asked and nothing wrong was done
    assert tool_recall([], []) == 1.0
    assert tool_precision([], []) == 1.0


def test_success_rate_counts_reference_tools_called_with_a_2xx() -> None:
    # reference {a, b}; a succeeded once (after a 404), b only failed: 1/2
    calls = [Call("a", {}, 404), Call("a", {}, 200), Call("b", {}, 400), Call("c", {}, 200)]
    assert success_rate(["a", "b"], calls) == 0.5
    # a call that could not be made (status 0, error) is not a success
    assert success_rate(["a"], [Call("a", {}, 0, error="missing path argument")]) == 0.0


def test_outcome_match_is_per_environment_state_hash_equality() -> None:
    assert outcome_match({"pets": H1, "shop": H0}, {"pets": H1, "shop": H2}) == {"pets": True, "shop": False}
    # an environment the model's run did not report counts as not matching
    assert outcome_match({"pets": H1}, {}) == {"pets": False}


def test_values_match_normalises_types() -> None:
    assert values_match(7, "7") and values_match(7, 7.0) and values_match(True, "true")
    assert values_match({"a": [1, "x "]}, {"a": ["1", "x"]})
    assert not values_match(7, 8) and not values_match("dog", "cat") and not values_match(True, 1.5)


def test_argument_accuracy_over_calls_matched_by_tool_name() -> None:
    reference = [ref_call("get_pet", petId=12), ref_call("add_pet", name="Rex", kind="sold")]
    # get_pet matched with the right id; add_pet matched, one of two arguments right: 2/3
    calls = [Call("get_pet", {"petId": "12"}, 200), Call("add_pet", {"name": "Rex", "kind": "available"}, 200)]
    assert argument_accuracy(reference, calls) == pytest.approx(2 / 3)
    # no reference tool called at all: undefined (None), left out of means
    assert argument_accuracy(reference, [Call("other", {}, 200)]) is None


def test_match_calls_prefers_the_call_with_the_most_equal_arguments() -> None:
    reference = [ref_call("get_pet", petId=2)]
    calls = [Call("get_pet", {"petId": 1}, 404), Call("get_pet", {"petId": 2}, 200)]
    assert match_calls(reference, calls) == [(0, 1)]


def test_key_values_are_reference_output_scalars_that_the_reference_answer_uses() -> None:
    responses = [{"id": 10, "name": "doggie", "status": "sold", "tags": [{"name": "x"}], "ok": True}, None]
    answer = "Pet 10 is called Doggie and is sold."
    # 10 (2+ chars), doggie (case-insensitive) and sold are in the answer; "x" is too short; True is a bool
    assert key_values(responses, answer) == ("10", "doggie", "sold")
    # a value glued to other letters or digits does not count: 10 is not in "100"
    assert not contains_token("about 100 pets", "10")


def test_qor_proxy_is_the_share_of_key_values_in_the_models_answer() -> None:
    keys = ("10", "doggie", "sold")
    assert qor_proxy(keys, "Doggie (id 10) was sold") == 1.0
    assert qor_proxy(keys, "Pet 10 exists") == pytest.approx(1 / 3)
    assert qor_proxy((), "anything") is None


def test_error_breakdown_on_a_run_with_every_kind_of_mistake() -> None:
    reference = Reference(
        calls=(ref_call("get_pet", petId=1), ref_call("add_pet", status=200, wrote=True, name="Rex")),
        state={"pets": H1}, answer="Rex")
    attempt = Attempt(calls=(
        Call("get_pet", {"petId": "x"}, 400, env="pets"),  # bad arguments (4xx)
        Call("delete_pet", {"petId": 1}, 200, env="pets", wrote=True),  # wrong tool and an extra write
        Call("nope", {}, 0, error="unknown tool", known=False),  # wrong tool only (not bad arguments)
    ), state={"pets": H2}, answer="done", stop="answered")
    errors = error_breakdown(reference, attempt)
    assert errors == {"wrong_tool": 2, "bad_arguments": 1, "missing_write": 1, "extra_write": 1,
                      "stopped_early": 1, "step_limit": 0, "model_error": 0}


def test_score_trial_of_a_perfect_run_and_of_a_different_valid_path() -> None:
    reference = Reference(calls=(ref_call("add_pet", wrote=True, name="Rex"),), state={"pets": H1},
                          answer="Added Rex", key_values=("Rex",))
    perfect = Attempt((Call("add_pet", {"name": "Rex"}, 200, env="pets", wrote=True),), {"pets": H1},
                      "I added Rex.", "answered")
    score = score_trial(reference, perfect)
    assert (score.tool_recall, score.success_rate, score.outcome_match, score.argument_accuracy,
            score.qor_proxy, score.passed) == (1.0, 1.0, 1.0, 1.0, 1.0, True)
    assert sum(score.errors.values()) == 0
    # the same final state reached with other tools: outcome counts, success does not
    other = Attempt((Call("put_pet", {"name": "Rex"}, 200, env="pets", wrote=True),), {"pets": H1}, "ok", "answered")
    score = score_trial(reference, other)
    assert score.outcome_match == 1.0 and score.success_rate == 0.0 and not score.passed


def test_pass_hat_k_is_taus_estimator() -> None:
    # 4 trials, 2 passed: pass^1 = 2/4, pass^2 = C(2,2)/C(4,2) = 1/6
    assert pass_hat_k(2, 4, 1) == 0.5
    assert pass_hat_k(2, 4, 2) == pytest.approx(1 / 6)
    assert pass_hat_k(4, 4, 4) == 1.0
    with pytest.raises(ValueError):
        pass_hat_k(1, 2, 3)


def _trial(passed: bool, outcome: float, env_outcome: dict[str, bool | None], qor: float | None = None) -> TrialScore:
    return TrialScore(1.0, 1.0, 1.0 if passed else 0.5, outcome, env_outcome, None, qor,
                      {"wrong_tool": 1}, passed)


def test_aggregate_means_over_samples_of_means_over_trials() -> None:
    a = SampleScores("a", ("pets",), [_trial(True, 1.0, {"pets": True}), _trial(False, 0.0, {"pets": False})])
    b = SampleScores("b", ("pets", "shop"), [_trial(True, 1.0, {"pets": True, "shop": True})] * 2)
    out = aggregate([a, b], k=2)
    assert out["success_rate"] == pytest.approx((0.75 + 1.0) / 2)
    assert out["pass^1"] == pytest.approx((0.5 + 1.0) / 2)
    assert out["pass^2"] == pytest.approx((0.0 + 1.0) / 2)
    assert out["argument_accuracy"] is None  # undefined everywhere
    envs = per_environment([a, b])
    assert envs["pets"]["outcome_match"] == pytest.approx(0.75) and envs["shop"]["samples"] == 1


def test_check_call_is_bfcl_style() -> None:
    schema = {"properties": {"petId": {"type": "integer"}, "verbose": {"type": "boolean"}}, "required": ["petId"]}
    ref = {"name": "get_pet", "arguments": {"petId": 12}}
    assert check_call({"name": "get_pet", "arguments": {"petId": "12"}}, ref, schema) is None
    assert "name" in str(check_call({"name": "getPet", "arguments": {"petId": 12}}, ref, schema))
    assert "required" in str(check_call({"name": "get_pet", "arguments": {}}, ref, schema))
    assert "unexpected" in str(check_call({"name": "get_pet", "arguments": {"petId": 12, "x": 1}}, ref, schema))
    assert "expected 12" in str(check_call({"name": "get_pet", "arguments": {"petId": 13}}, ref, schema))


def test_score_call_list_is_order_free_and_counts_extras() -> None:
    reference = [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]
    exact = score_call_list([{"name": "b", "arguments": {}}, {"name": "a", "arguments": {"x": "1"}}], reference)
    assert exact.exact and exact.matched == 2 and exact.name_recall == 1.0
    extra = score_call_list([*reversed(reference), {"name": "c", "arguments": {}}], reference)
    assert not extra.exact and extra.matched == 2 and "c: not in the reference" in extra.errors
    wrong = score_call_list([{"name": "a", "arguments": {"x": 2}}], reference)
    assert wrong.matched == 0 and wrong.name_recall == 0.5 and not wrong.exact


def test_outcome_is_not_evaluated_against_a_reference_replay_that_diverged() -> None:
    """Bad input: the reference replay did not reproduce the record, so its final state is no yardstick."""
    diverged = Reference(calls=(ref_call("add_pet", wrote=True, name="Rex"),), state={"pets": H1},
                         answer="Added Rex", as_recorded=False)
    attempt = Attempt((Call("add_pet", {"name": "Rex"}, 200, env="pets", wrote=True),), {"pets": H1},
                      "Added Rex", "answered")
    score = score_trial(diverged, attempt)
    assert score.outcome_match is None and score.env_outcome == {"pets": None}
    assert score.success_rate == 1.0 and not score.passed  # the state part of a pass cannot be judged
    evaluated = SampleScores("a", ("pets",), [_trial(True, 1.0, {"pets": True}), _trial(False, 0.0, {"pets": False})])
    not_evaluated = SampleScores("b", ("pets",), [score, score])
    out = aggregate([evaluated, not_evaluated], k=1)
    assert out["outcome_match"] == pytest.approx(0.5)  # sample a's mean alone
    assert out["outcome_not_evaluated"] == 1 and out["samples"] == 2
    assert out["success_rate"] == pytest.approx((0.75 + 1.0) / 2)  # the other metrics still count b
    assert per_environment([evaluated, not_evaluated])["pets"]["outcome_match"] == pytest.approx(0.5)
    assert per_environment([not_evaluated])["pets"]["outcome_match"] is None

"""Evaluation metrics: pure functions over what the reference did and what a model did.

Nothing here touches a sandbox or a model; :mod:`benchmarks.evaluate.runner` gathers the inputs.
docs/metrics.md defines every number precisely; the docstrings here say the same briefly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ERROR_KINDS = ("wrong_tool", "bad_arguments", "missing_write", "extra_write", "stopped_early",
               "step_limit", "model_error")
STOP_REASONS = ("answered", "step_limit", "model_error")


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call, the reference's or the model's."""

    tool: str
    arguments: dict[str, Any]
    status: int  # HTTP status; 0 when the call could not be made
    env: str = ""
    wrote: bool = False  # the call changed its environment's state hash
    error: str = ""  # why the call could not be made (unknown tool, arguments not JSON, ...)
    known: bool = True  # the tool exists among the sample's candidate tools

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and not self.error


@dataclass(frozen=True, slots=True)
class Reference:
    calls: tuple[Call, ...]
    state: Mapping[str, str]  # env -> state hash after the reference replay
    answer: str
    key_values: tuple[str, ...] = ()  # see key_values()
    # False when the replay diverged from the record (an uncertified sample): its final state is
    # then no yardstick, and outcome_match is not evaluated (tau2 does the same when the
    # reference itself fails)
    as_recorded: bool = True


@dataclass(frozen=True, slots=True)
class Attempt:
    calls: tuple[Call, ...]
    state: Mapping[str, str]  # env -> state hash after the model's run
    answer: str
    stop: str  # one of STOP_REASONS


@dataclass(frozen=True, slots=True)
class TrialScore:
    tool_recall: float
    tool_precision: float
    success_rate: float
    outcome_match: float | None  # 1.0 when every environment's state equals the reference's; None: not evaluated
    env_outcome: dict[str, bool | None]  # None: not evaluated (the reference replay diverged)
    argument_accuracy: float | None  # None: no reference call was matched
    qor_proxy: float | None  # None: the reference answer carries no key value
    errors: dict[str, int]
    passed: bool
    qor_judge: float | None = None  # 0..100, set when a judge scored the answer


# --- one trial -----------------------------------------------------------------------------------


def tool_recall(reference: Iterable[str], called: Iterable[str]) -> float:
    """|reference ∩ called| / |reference| over tool-name sets (1.0 when the reference is empty)."""
    ref, got = set(reference), set(called)
    return len(ref & got) / len(ref) if ref else 1.0


def tool_precision(reference: Iterable[str], called: Iterable[str]) -> float:
    """|reference ∩ called| / |called| over tool-name sets (0.0 when nothing was called, unless
    the reference is empty too)."""
    ref, got = set(reference), set(called)
    if not got:
        return 0.0 if ref else 1.0
    return len(ref & got) / len(got)


def success_rate(reference: Iterable[str], calls: Iterable[Call]) -> float:
    """The paper's success rate: the share of reference tools the model called at least once
    with a 2xx response."""
    ref = set(reference)
    if not ref:
        return 1.0
    ok = {c.tool for c in calls if c.ok}
    return len(ref & ok) / len(ref)


def outcome_match(reference: Mapping[str, str], got: Mapping[str, str]) -> dict[str, bool]:
    """Per environment: the model's final state hash equals the reference replay's."""
    return {env: got.get(env) == reference[env] for env in sorted(reference)}


def normalize(value: Any) -> Any:
    """A value in the form two arguments are compared in: numbers as floats, numeric strings and
    "true"/"false" as what they spell, strings trimmed, containers recursively."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    return value


def values_match(expected: Any, got: Any) -> bool:
    """Equal after :func:`normalize` (so 7 == 7.0 == "7" and True == "true")."""
    return bool(normalize(expected) == normalize(got))


def match_calls(reference: Sequence[Call], calls: Sequence[Call]) -> list[tuple[int, int]]:
    """Pairs (reference index, model call index) matched by tool name: each reference call, in
    order, takes the not yet matched model call of the same tool that agrees on the most
    reference arguments (the earliest on ties)."""
    taken: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for ri, ref in enumerate(reference):
        best: tuple[int, int] | None = None  # (-agreeing arguments, index)
        for ci, call in enumerate(calls):
            if ci in taken or call.tool != ref.tool:
                continue
            agree = sum(1 for k, v in ref.arguments.items() if k in call.arguments and values_match(v, call.arguments[k]))
            if best is None or (-agree, ci) < best:
                best = (-agree, ci)
        if best is not None:
            taken.add(best[1])
            pairs.append((ri, best[1]))
    return pairs


def argument_accuracy(reference: Sequence[Call], calls: Sequence[Call]) -> float | None:
    """Over reference calls matched by tool name (:func:`match_calls`): equal arguments / reference
    arguments. None when no reference call was matched or the matched ones take no arguments."""
    total = equal = 0
    for ri, ci in match_calls(reference, calls):
        ref, call = reference[ri], calls[ci]
        for name, value in ref.arguments.items():
            total += 1
            if name in call.arguments and values_match(value, call.arguments[name]):
                equal += 1
    return equal / total if total else None


_MIN_TEXT = 3


def key_values(responses: Iterable[Any], answer: str) -> tuple[str, ...]:
    """Key values: the scalar leaves (strings of at least 3 characters, numbers of at least 2
    characters as written; not booleans, not null) of the reference's 2xx response bodies that
    occur in the reference answer as whole tokens (case-insensitive). Sorted, distinct."""
    found: set[str] = set()
    for body in responses:
        for leaf in _scalar_leaves(body):
            if contains_token(answer, leaf):
                found.add(leaf)
    return tuple(sorted(found))


def _scalar_leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _scalar_leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _scalar_leaves(v)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        text = str(value)
        if len(text) >= 2:
            yield text
    elif isinstance(value, str):
        text = value.strip()
        if len(text) >= _MIN_TEXT:
            yield text


def contains_token(text: str, value: str) -> bool:
    """``value`` occurs in ``text`` not glued to letters or digits on either side (case-insensitive)."""
    pattern = r"(?<![0-9A-Za-z])" + re.escape(value) + r"(?![0-9A-Za-z])"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def qor_proxy(keys: Sequence[str], answer: str) -> float | None:
    """Share of the reference's key values present (as tokens) in the model's answer; None when
    there are no key values."""
    if not keys:
        return None
    return sum(1 for k in keys if contains_token(answer, k)) / len(keys)


def error_breakdown(reference: Reference, attempt: Attempt) -> dict[str, int]:
    """Counts per error kind (see ERROR_KINDS and docs/metrics.md)."""
    ref_tools = {c.tool for c in reference.calls}
    ref_writes = {c.tool for c in reference.calls if c.wrote}
    ok_tools = {c.tool for c in attempt.calls if c.ok}
    errors = dict.fromkeys(ERROR_KINDS, 0)
    errors["wrong_tool"] = sum(1 for c in attempt.calls if c.tool not in ref_tools)
    errors["bad_arguments"] = sum(1 for c in attempt.calls if c.known and (c.error or 400 <= c.status < 500))
    errors["missing_write"] = len(ref_writes - ok_tools)
    errors["extra_write"] = sum(1 for c in attempt.calls if c.wrote and c.tool not in ref_writes)
    missing = ref_tools - ok_tools
    errors["stopped_early"] = int(attempt.stop == "answered" and bool(missing))
    errors["step_limit"] = int(attempt.stop == "step_limit")
    errors["model_error"] = int(attempt.stop == "model_error")
    return errors


def score_trial(reference: Reference, attempt: Attempt) -> TrialScore:
    """Every per-trial metric. A trial *passes* when the final state matches the reference in
    every environment and every reference tool was called successfully. When the reference
    replay diverged from the record, ``outcome_match`` is None (not evaluated) and the trial
    does not pass: the state it would be judged by is not the one the dataset promises."""
    ref_tools = [c.tool for c in reference.calls]
    called = [c.tool for c in attempt.calls]
    envs: dict[str, bool | None]
    outcome: float | None
    if reference.as_recorded:
        envs = dict(outcome_match(reference.state, attempt.state))
        outcome = 1.0 if all(envs.values()) else 0.0
    else:
        envs, outcome = dict.fromkeys(sorted(reference.state)), None
    success = success_rate(ref_tools, attempt.calls)
    return TrialScore(
        tool_recall=tool_recall(ref_tools, called),
        tool_precision=tool_precision(ref_tools, called),
        success_rate=success,
        outcome_match=outcome,
        env_outcome=envs,
        argument_accuracy=argument_accuracy(reference.calls, attempt.calls),
        qor_proxy=qor_proxy(reference.key_values, attempt.answer),
        errors=error_breakdown(reference, attempt),
        passed=outcome == 1.0 and success == 1.0,
    )


# --- across trials and samples -------------------------------------------------------------------


def pass_hat_k(successes: int, trials: int, k: int) -> float:
    """tau-bench's pass^k for one task: C(successes, k) / C(trials, k), the chance that k trials
    drawn without replacement from the ``trials`` run all pass."""
    if not 1 <= k <= trials:
        raise ValueError(f"k must be between 1 and the number of trials ({trials}), got {k}")
    return math.comb(successes, k) / math.comb(trials, k)


def mean(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not None; None when there are none."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


SCORE_FIELDS = ("tool_recall", "tool_precision", "success_rate", "outcome_match", "argument_accuracy",
                "qor_proxy", "qor_judge")


@dataclass(slots=True)
class SampleScores:
    """All trials of one sample."""

    sample: str
    envs: tuple[str, ...]
    trials: list[TrialScore] = field(default_factory=list)

    def metric(self, name: str) -> float | None:
        return mean(getattr(t, name) for t in self.trials)


def aggregate(samples: Sequence[SampleScores], k: int) -> dict[str, Any]:
    """Dataset-level metrics: each metric's mean over samples of its mean over trials (samples
    where it is undefined are left out), pass^1..pass^k, and error counts summed over trials;
    ``outcome_not_evaluated`` counts the samples left out of ``outcome_match``."""
    out: dict[str, Any] = {name: mean(s.metric(name) for s in samples) for name in SCORE_FIELDS}
    trials = min((len(s.trials) for s in samples), default=0)
    for j in range(1, min(k, trials) + 1):
        out[f"pass^{j}"] = mean(pass_hat_k(sum(t.passed for t in s.trials), len(s.trials), j) for s in samples)
    out["samples"] = len(samples)
    out["trials"] = sum(len(s.trials) for s in samples)
    out["outcome_not_evaluated"] = sum(1 for s in samples if s.trials and s.metric("outcome_match") is None)
    return out


def error_totals(samples: Sequence[SampleScores]) -> dict[str, int]:
    totals = dict.fromkeys(ERROR_KINDS, 0)
    for s in samples:
        for t in s.trials:
            for kind, n in t.errors.items():
                totals[kind] += n
    return totals


def per_environment(samples: Sequence[SampleScores]) -> dict[str, dict[str, Any]]:
    """The metrics of the samples that use each environment; ``outcome_match`` there is that
    environment's own state match."""
    out: dict[str, dict[str, Any]] = {}
    for env in sorted({e for s in samples for e in s.envs}):
        mine = [s for s in samples if env in s.envs]
        row: dict[str, Any] = {name: mean(s.metric(name) for s in mine) for name in SCORE_FIELDS}
        row["outcome_match"] = mean(mean(_env_outcome(t, env) for t in s.trials) for s in mine)
        row["samples"] = len(mine)
        out[env] = row
    return out


def _env_outcome(trial: TrialScore, env: str) -> float | None:
    match = trial.env_outcome.get(env)
    return None if match is None and env in trial.env_outcome else float(bool(match))

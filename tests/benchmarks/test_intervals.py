"""The comparison's 95% intervals: Wilson for pass rates, a deterministic stratified bootstrap for
ratios (model calls per certified sample), undefined and unbounded cases named."""

from __future__ import annotations

import math

import pytest

from benchmarks.baseline.figures import SeedResult, figures_of
from benchmarks.evaluate.stats import bootstrap_ratio, wilson


def test_wilson_matches_the_textbook_values() -> None:
    # Wilson score interval, z = 1.96 (e.g. Newcombe 1998, table I)
    low, high = wilson(5, 10)  # type: ignore[misc]
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    low, high = wilson(0, 10)  # type: ignore[misc]
    assert low == 0.0 and round(high, 4) == 0.2775  # not empty at 0 successes, unlike Wald
    low, high = wilson(10, 10)  # type: ignore[misc]
    assert round(low, 4) == 0.7225 and high == pytest.approx(1.0)
    assert wilson(0, 0) is None


def test_wilson_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match=r"successes must lie in 0\.\.3"):
        wilson(4, 3)  # more successes than trials


def test_bootstrap_is_deterministic_and_brackets_the_ratio() -> None:
    units = [(float(c), 1.0 if c % 3 else 0.0) for c in range(1, 31)]  # 20 of 30 "certified"
    first = bootstrap_ratio([units], "a")
    assert first == bootstrap_ratio([units], "a")  # same data, same label: same interval
    assert first != bootstrap_ratio([units], "b")  # another label draws other resamples
    ratio = sum(n for n, _ in units) / sum(d for _, d in units)
    assert first is not None and first[1] is not None
    assert first[0] < ratio < first[1]


def test_bootstrap_of_identical_units_is_a_point_and_undefined_without_a_denominator() -> None:
    assert bootstrap_ratio([[(10.0, 1.0)] * 5], "x") == (10.0, 10.0)
    assert bootstrap_ratio([[(10.0, 0.0)] * 5], "x") is None  # nothing certified: no ratio at all
    assert bootstrap_ratio([], "x") is None


def test_bootstrap_is_unbounded_when_most_resamples_certify_nothing() -> None:
    units = [(50.0, 0.0)] * 29 + [(50.0, 1.0)]  # one certified sample in 30 seeds
    low, high = bootstrap_ratio([units], "rare")  # type: ignore[misc]
    assert high is None and math.isfinite(low) and low <= 1500.0


def test_strata_keep_their_sizes() -> None:
    # two environments, one cheap and one dear: a stratified resample always holds 3 of each, so the
    # pooled ratio can never reach either extreme, as an unstratified one could
    cheap, dear = [(1.0, 1.0)] * 3, [(9.0, 1.0)] * 3
    low, high = bootstrap_ratio([cheap, dear], "strata", resamples=500)  # type: ignore[misc]
    assert 1.0 < low <= 5.0 <= high < 9.0  # type: ignore[operator]


def test_figures_of_seeds() -> None:
    seeds = [SeedResult(group="g", seed=i, written=i < 8, certified=i < 6, model_calls=10 + i, prompt_tokens=100,
                        completion_tokens=10, steps=3 if i < 8 else 0) for i in range(10)]
    figures = figures_of(seeds, "test")
    assert figures.pass_rate.value == 0.6 and figures.pass_rate.n == 10
    assert figures.model_calls_per_certified.value == pytest.approx(sum(10 + i for i in range(10)) / 6, abs=1e-3)
    assert figures.tokens_per_certified.value == pytest.approx(1100 / 6, abs=1e-3)
    assert figures.model_calls_per_attempt.value == pytest.approx(14.5)
    assert figures.tool_calls_per_sample.value == 3.0 and figures.tool_calls_per_sample.n == 6  # certified only
    assert figures.decisions_per_certified.value is None  # a model run: no decisions counted

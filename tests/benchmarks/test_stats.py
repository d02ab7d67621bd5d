"""95% intervals and paired t-tests (benchmarks/evaluate/stats.py) on hand-checked cases."""

from __future__ import annotations

import math

import pytest

from benchmarks.evaluate.stats import mean_interval, paired_test


def test_interval_of_a_mean() -> None:
    interval = mean_interval([0.0, 1.0, 1.0, 0.0, 1.0])
    assert interval is not None and interval.n == 5 and interval.mean == pytest.approx(0.6)
    # s = 0.5477, t(0.975, 4) = 2.7764: half width 0.6801, clipped at 0 and 1
    assert (interval.low, interval.high) == (0.0, 1.0)
    wide = mean_interval([0.4, 0.5, 0.6], upper=None)
    assert wide is not None
    assert wide.high - wide.mean == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-5)
    assert mean_interval([]) is None
    single = mean_interval([0.25])
    assert single is not None and (single.low, single.high) == (0.25, 0.25)


def test_paired_t_test_matches_the_textbook() -> None:
    a = {str(i): 0.0 for i in range(5)}
    b = {str(i): float(i + 1) for i in range(5)}  # differences 1..5: mean 3, s = 1.5811
    test = paired_test(a, b)
    assert test is not None and test.n == 5 and test.difference == pytest.approx(3.0)
    assert test.t == pytest.approx(4.242641, rel=1e-6)
    assert test.p == pytest.approx(0.013236, rel=1e-3)
    assert test.low == pytest.approx(3 - 2.776445 * 1.581139 / math.sqrt(5), rel=1e-5)


def test_pairs_are_matched_by_id_and_undefined_values_left_out() -> None:
    a = {"x": 0.0, "y": 1.0, "z": None, "only-a": 1.0}
    b = {"y": 1.0, "x": 1.0, "z": 0.5, "only-b": 0.0}
    test = paired_test(a, b)
    assert test is not None and test.n == 2 and test.mean_a == 0.5 and test.mean_b == 1.0


def test_no_spread() -> None:
    same = paired_test({"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 0.0})
    assert same is not None and same.p == 1.0 and same.t is None and same.difference == 0.0
    shifted = paired_test({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 1.0})
    assert shifted is not None and shifted.p is None and (shifted.low, shifted.high) == (1.0, 1.0)
    assert paired_test({"a": 1.0}, {"a": 0.0}) is None

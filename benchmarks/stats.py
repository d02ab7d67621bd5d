"""Uncertainty for evaluation metrics: a 95% interval per metric for one model, and a paired
t-test per metric for two models on the same samples (what the official ToolGrad evaluation
reports). Pure functions over per-sample values; Student's t comes from scipy.

* The interval of a mean over *n* samples: mean ± t(0.975, n-1) · s / √n, clipped to the
  metric's range (a 0..1 fraction cannot be 1.2). With one sample, or no spread, it is the
  mean itself.
* The paired test takes the samples both runs scored (matched by sample id, left out where
  either value is undefined), the differences d = B − A, and reports mean(d), its 95% interval
  and the two-sided p of t = mean(d) / (s_d / √n) with n-1 degrees of freedom. With no spread
  in d the test is undefined unless mean(d) is 0 (then p = 1): p is None and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True, slots=True)
class PairedTest:
    n: int  # samples both runs scored
    mean_a: float
    mean_b: float
    difference: float  # mean of B - A
    low: float  # 95% interval of the difference
    high: float
    t: float | None
    p: float | None  # two-sided; None when undefined (no spread and a nonzero difference)


def _spread(values: Sequence[float]) -> float:
    n = len(values)
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0


def mean_interval(values: Sequence[float], *, lower: float = 0.0, upper: float | None = 1.0) -> Interval | None:
    """The t-interval of the mean of ``values``, clipped to [lower, upper]; None when empty."""
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    half = 0.0
    if n > 1:
        half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * _spread(values) / math.sqrt(n)
    high = mean + half if upper is None else min(upper, mean + half)
    return Interval(mean, max(lower, mean - half), high, n)


def paired_test(a: Mapping[str, float | None], b: Mapping[str, float | None]) -> PairedTest | None:
    """Paired t-test of B against A over the keys (sample ids) where both have a value; None
    when fewer than two pairs remain."""
    keys = sorted(k for k in a.keys() & b.keys() if a[k] is not None and b[k] is not None)
    if len(keys) < 2:
        return None
    xa = [float(a[k]) for k in keys]  # type: ignore[arg-type]
    xb = [float(b[k]) for k in keys]  # type: ignore[arg-type]
    diffs = [y - x for x, y in zip(xa, xb, strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = _spread(diffs)
    critical = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1))
    half = critical * sd / math.sqrt(n)
    t: float | None = None
    p: float | None = None
    if sd == 0.0:
        p = 1.0 if mean == 0.0 else None
    else:
        t = mean / (sd / math.sqrt(n))
        p = float(2 * stats.t.sf(abs(t), n - 1))
    return PairedTest(n, sum(xa) / n, sum(xb) / n, mean, mean - half, mean + half, t, p)

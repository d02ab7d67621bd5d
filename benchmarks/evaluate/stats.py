"""Uncertainty for evaluation and comparison figures: a 95% interval per metric for one model, a
paired t-test per metric for two models on the same samples (what the official ToolGrad evaluation
reports), and the intervals of ``bench compare``'s pass rates and cost ratios. Pure functions over
per-sample values; Student's t and the Wilson interval come from scipy.

* The interval of a mean over *n* samples: mean ± t(0.975, n-1) · s / √n, clipped to the
  metric's range (a 0..1 fraction cannot be 1.2). With one sample, or no spread, it is the
  mean itself.
* The paired test takes the samples both runs scored (matched by sample id, left out where
  either value is undefined), the differences d = B − A, and reports mean(d), its 95% interval
  and the two-sided p of t = mean(d) / (s_d / √n) with n-1 degrees of freedom. With no spread
  in d the test is undefined unless mean(d) is 0 (then p = 1): p is None and says so.
* :func:`wilson`: the Wilson score interval of a proportion (a pass rate). Unlike the normal
  ("Wald") interval it stays inside [0, 1] and is not empty at 0 or n successes, which matters
  at the small n a local model allows.
* :func:`bootstrap_ratio`: a percentile bootstrap interval of ``sum(numerators) /
  sum(denominators)`` over units (seeds), resampled with replacement *within each stratum*
  (environment): "model calls per certified sample, all attempts" is such a ratio (each seed
  contributes its calls and 0 or 1 certified sample), and so is a plain mean (every denominator
  1). A resample whose denominator is 0 has an unbounded ratio; when more than 2.5% of them do,
  the upper bound is ``None`` (unbounded). Its draws come from a :class:`random.Random` seeded
  from ``sha256`` of the data and a caller's label (never the global RNG), so the same figures
  give the same interval in every process.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

from toolgrad.sampling import stable_int

CONFIDENCE = 0.95
RESAMPLES = 2000

RatioInterval = tuple[float, float | None]  # (low, high); high None: unbounded
Unit = tuple[float, float]  # (numerator, denominator) of one unit, e.g. (model calls, certified)


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


def wilson(successes: int, trials: int) -> tuple[float, float] | None:
    """The 95% Wilson score interval of ``successes / trials`` (None when there are no trials)."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in 0..{trials}, not {successes}")
    bounds = stats.binomtest(successes, trials).proportion_ci(CONFIDENCE, method="wilson")
    return float(bounds.low), float(bounds.high)


def bootstrap_ratio(strata: Sequence[Sequence[Unit]], label: str = "", *, resamples: int = RESAMPLES,
                    level: float = CONFIDENCE) -> RatioInterval | None:
    """A percentile bootstrap interval of the pooled ratio sum(num) / sum(den) over every unit
    of every stratum; each resample redraws each stratum's units with replacement, keeping its
    size. None when there is no unit or the observed denominator is 0 (the ratio is undefined)."""
    units = [u for stratum in strata for u in stratum]
    if not units or sum(den for _, den in units) <= 0:
        return None
    rng = random.Random(stable_int("bootstrap", label, [[list(u) for u in s] for s in strata], resamples))
    columns = [([n for n, _ in stratum], [d for _, d in stratum], range(len(stratum))) for stratum in strata]
    ratios: list[float] = []
    for _ in range(resamples):
        num = den = 0.0
        for nums, dens, indices in columns:
            picks = rng.choices(indices, k=len(indices))
            num += sum(map(nums.__getitem__, picks))
            den += sum(map(dens.__getitem__, picks))
        ratios.append(num / den if den > 0 else math.inf)
    ratios.sort()
    tail = (1 - level) / 2
    low = ratios[_rank(tail, resamples)]
    high = ratios[_rank(1 - tail, resamples)]
    if not math.isfinite(low):
        return None
    return low, (high if math.isfinite(high) else None)


def _rank(quantile: float, count: int) -> int:
    """The index of ``quantile`` in ``count`` sorted values (nearest rank)."""
    return min(count - 1, max(0, math.ceil(quantile * count) - 1))

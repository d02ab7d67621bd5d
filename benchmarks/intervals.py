"""95% intervals for the comparison's figures, as pure functions.

* :func:`wilson`: the Wilson score interval of a proportion (a pass rate). Unlike the normal
  ("Wald") interval it stays inside [0, 1] and is not empty at 0 or n successes, which matters
  at the small n a local model allows.
* :func:`bootstrap_ratio`: a percentile bootstrap interval of ``sum(numerators) /
  sum(denominators)`` over units (seeds), resampled with replacement *within each stratum*
  (environment): the figure "model calls per certified sample, all attempts" is such a ratio
  (each seed contributes its calls and 0 or 1 certified sample), and so is a plain mean (every
  denominator 1). A resample whose denominator is 0 has an unbounded ratio; when more than
  2.5% of them do, the upper bound is ``None`` (unbounded).

Deterministic: the resampling draws come from a :class:`random.Random` seeded from ``sha256`` of
the data and a caller's label (never the global RNG), so the same figures give the same interval
in every process. (Kept apart, small and pure, so issue 17's statistics module can take it in.)
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from toolgrad.sampling import stable_int

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
RESAMPLES = 2000

Interval = tuple[float, float | None]  # (low, high); high None: unbounded


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes / trials`` (None when there are no trials)."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in 0..{trials}, not {successes}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


Unit = tuple[float, float]  # (numerator, denominator) of one unit, e.g. (model calls, certified)


def bootstrap_ratio(strata: Sequence[Sequence[Unit]], label: str = "", *, resamples: int = RESAMPLES,
                    level: float = 0.95) -> Interval | None:
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

"""The comparison's figures: one :class:`SeedResult` per attempted seed, and estimates with 95%
intervals computed from them (:func:`figures_of`).

Intervals: a Wilson score interval for the pass rate; for every other figure a percentile
bootstrap over seeds (2,000 resamples, redrawn within each environment), of a ratio of sums:
model calls (tokens, decisions) over all seeds / certified samples, and tool calls over certified
samples / certified samples. A high bound of None means unbounded (too many resamples hold no
certified sample); a value of None means undefined (no certified sample at all).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from benchmarks.evaluate.stats import Unit, bootstrap_ratio, wilson


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedResult(_Record):
    """One attempted seed of one generator."""

    group: str  # the environment (or "all"): pooled intervals resample within it
    seed: int
    written: bool  # a sample was written
    certified: bool  # ... and it passed every check of the certificate
    model_calls: int = 0  # every model call made for the seed (benchmarks.baseline.budget)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_requests: int = 0
    decisions: int | None = None  # offline: what a model backend would have been asked; None when unknown
    steps: int = 0  # calls in the written sample's chains
    error: str = ""  # why no sample was written


class Estimate(_Record):
    value: float | None  # None: undefined (nothing to divide by)
    low: float | None = None
    high: float | None = None  # None with a value: unbounded above
    n: int  # the units it rests on: seeds, or certified samples


class Figures(_Record):
    pass_rate: Estimate  # certified / attempted
    model_calls_per_certified: Estimate  # all attempts
    tokens_per_certified: Estimate  # all attempts, prompt + completion
    model_calls_per_attempt: Estimate
    decisions_per_certified: Estimate  # all attempts; undefined with a model
    tool_calls_per_sample: Estimate  # steps per certified sample


def _strata(seeds: list[SeedResult], unit: Callable[[SeedResult], Unit],
            keep: Callable[[SeedResult], bool] = lambda s: True) -> list[list[Unit]]:
    groups: dict[str, list[Unit]] = {}
    for s in seeds:
        if keep(s):
            groups.setdefault(s.group, []).append(unit(s))
    return [groups[g] for g in sorted(groups)]


def ratio(seeds: list[SeedResult], unit: Callable[[SeedResult], Unit], label: str,
          keep: Callable[[SeedResult], bool] = lambda s: True) -> Estimate:
    strata = _strata(seeds, unit, keep)
    units = [u for stratum in strata for u in stratum]
    den = sum(d for _, d in units)
    value = round(sum(n for n, _ in units) / den, 3) if den > 0 else None
    interval = bootstrap_ratio(strata, label)
    low, high = (None, None) if interval is None else interval
    return Estimate(value=value, low=None if low is None else round(low, 3),
                    high=None if high is None else round(high, 3), n=len(units))


def figures_of(seeds: list[SeedResult], label: str) -> Figures:
    """Every figure of ``seeds`` (one generator, one group or pooled); ``label`` seeds the bootstrap."""
    certified = sum(s.certified for s in seeds)
    bounds = wilson(certified, len(seeds))
    pass_rate = Estimate(value=round(certified / len(seeds), 4) if seeds else None,
                         low=round(bounds[0], 4) if bounds else None, high=round(bounds[1], 4) if bounds else None,
                         n=len(seeds))
    known = bool(seeds) and all(s.decisions is not None for s in seeds)
    return Figures(
        pass_rate=pass_rate,
        model_calls_per_certified=ratio(seeds, lambda s: (s.model_calls, s.certified), f"{label}/calls"),
        tokens_per_certified=ratio(seeds, lambda s: (s.prompt_tokens + s.completion_tokens, s.certified),
                                   f"{label}/tokens"),
        model_calls_per_attempt=ratio(seeds, lambda s: (s.model_calls, 1), f"{label}/calls-per-attempt"),
        decisions_per_certified=(ratio(seeds, lambda s: (s.decisions or 0, s.certified), f"{label}/decisions")
                                 if known else Estimate(value=None, n=len(seeds))),
        tool_calls_per_sample=ratio(seeds, lambda s: (s.steps, 1), f"{label}/steps", keep=lambda s: s.certified),
    )

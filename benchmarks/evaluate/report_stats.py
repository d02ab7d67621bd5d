"""The statistics a report shows: a 95% interval per headline metric of a run, and a paired
t-test per metric between runs on the same dataset (:mod:`benchmarks.evaluate.stats`), computed from
the per-sample values every ``report.json`` holds, so reports written before this existed
compare too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .stats import Interval, PairedTest, mean_interval, paired_test

if TYPE_CHECKING:  # report.py imports this module
    from .report import EvalReport as _Report

METRICS = (("tool_recall", "tool recall"), ("tool_precision", "tool precision"), ("success_rate", "success rate"),
           ("outcome_match", "outcome match"), ("argument_accuracy", "argument accuracy"),
           ("qor_proxy", "QoR proxy"), ("pass^1", "pass^1"), ("qor_judge", "QoR (judge, 0-100)"))


def per_sample(report: _Report, key: str) -> dict[str, float | None]:
    """Sample id -> the sample's value of ``key`` (its mean over trials; pass^1: the share of
    trials that passed)."""
    out: dict[str, float | None] = {}
    for sample in report.samples:
        if key == "pass^1":
            out[sample.id] = sum(t.passed for t in sample.trials) / len(sample.trials) if sample.trials else None
        else:
            out[sample.id] = sample.metrics.get(key)
    return out


def intervals(report: _Report) -> dict[str, Interval]:
    """Headline metric -> its 95% interval over samples (metrics no sample defines are left out)."""
    found = {}
    for key, _ in METRICS:
        values = [v for v in per_sample(report, key).values() if v is not None]
        interval = mean_interval(values, upper=100.0 if key == "qor_judge" else 1.0)
        if interval is not None:
            found[key] = interval
    return found


def interval_record(report: _Report) -> dict[str, dict[str, float]]:
    """The intervals as the JSON a report stores."""
    return {k: {"mean": i.mean, "low": i.low, "high": i.high, "n": i.n} for k, i in intervals(report).items()}


def comparable(a: _Report, b: _Report) -> bool:
    return bool(a.dataset.get("sha256")) and a.dataset.get("sha256") == b.dataset.get("sha256")


def paired_tests(a: _Report, b: _Report) -> list[tuple[str, PairedTest]]:
    """(metric label, test of B against A) for every headline metric both runs define."""
    rows = []
    for key, label in METRICS:
        test = paired_test(per_sample(a, key), per_sample(b, key))
        if test is not None:
            rows.append((label, test))
    return rows


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def paired_table(a: _Report, b: _Report) -> tuple[list[str], list[list[str]]]:
    """Header and rows: metric, A, B, B - A with its 95% interval, t, p, n."""
    header = ["metric", a.model, b.model, "difference (95% CI)", "t", "p", "n"]
    rows = []
    for label, t in paired_tests(a, b):
        p = "n/a (no spread)" if t.p is None else (f"{t.p:.2g}" if t.p < 0.001 else f"{t.p:.3f}")
        rows.append([label, _num(t.mean_a), _num(t.mean_b), f"{t.difference:+.3f} [{t.low:+.3f}, {t.high:+.3f}]",
                     _num(t.t, 2), p, str(t.n)])
    return header, rows


def with_interval(value: str, interval: Interval | None) -> str:
    if interval is None or value == "n/a":
        return value
    digits = 1 if interval.high > 1.0 else 3
    return f"{value} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"

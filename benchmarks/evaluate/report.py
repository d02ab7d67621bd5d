"""Evaluation reports: the on-disk record (:class:`EvalReport`, JSON for machines), Markdown for
people, and a static HTML page with charts.

The HTML is one self-contained file: inline CSS and inline SVG bar charts drawn here (no
JavaScript, no CDN), so it opens offline. Several runs (models) render side by side.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmarks.certify.certificate import versions
from benchmarks.certify.replay import BenchmarkError, Dataset
from simulator.canonical import pretty_json
from toolgrad.dataset.files import write_bytes_atomic, write_lines_atomic, write_text_atomic

from .metrics import ERROR_KINDS, SCORE_FIELDS, SampleScores, aggregate, error_totals, per_environment
from .report_stats import comparable, interval_record, intervals, paired_table, with_interval
from .runner import REPORT_VERSION, EvalSettings, TrialEvent

HEADLINE = (
    ("tool_recall", "tool recall"),
    ("tool_precision", "tool precision"),
    ("success_rate", "success rate"),
    ("outcome_match", "outcome match"),
    ("argument_accuracy", "argument accuracy"),
    ("qor_proxy", "QoR proxy"),
    ("pass^1", "pass^1"),
)
ENV_METRICS = (("success_rate", "success rate"), ("outcome_match", "outcome match"),
               ("tool_recall", "tool recall"))
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")


class ReportError(BenchmarkError):
    """A run file that is not an evaluation report."""


def report_bytes(report: EvalReport) -> bytes:
    return pretty_json(report.model_dump(mode="json")).encode()


def load_report(path: Path) -> EvalReport:
    try:
        return EvalReport.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise ReportError(f"{path}: not a toolgrad evaluation report (report.json from `toolgrad eval -o DIR`): "
                          f"{exc.errors()[0].get('msg', 'invalid')}") from exc


def run_label(report: EvalReport, reports: Sequence[EvalReport]) -> str:
    """The model name; with the dataset name added when two runs share a model."""
    same = [r for r in reports if r.model == report.model]
    if len(same) > 1:
        return f"{report.model} ({report.dataset.get('name', '')}, k={report.settings.get('k')})"
    return report.model


def _headline(report: EvalReport) -> list[tuple[str, str]]:
    rows = list(HEADLINE)
    k = int(report.settings.get("k", 1))
    if k > 1 and f"pass^{k}" in report.metrics:
        rows.append((f"pass^{k}", f"pass^{k}"))
    if report.metrics.get("qor_judge") is not None:
        rows.append(("qor_judge", "QoR (judge, 0-100)"))
    return rows


def not_evaluated_note(report: EvalReport, label: str) -> str | None:
    """The sentence a report shows when some samples' outcome match was not evaluated."""
    count = int(report.metrics.get("outcome_not_evaluated") or 0)
    if not count:
        return None
    return (f"{label}: outcome match not evaluated for {count} of {report.metrics.get('samples')} samples "
            "(their reference replay diverged from the record; left out of the mean; "
            "`toolgrad certify` names them)")


def writes_note(report: EvalReport, label: str) -> str | None:
    """How many samples' references change state: outcome match says little about the others
    (1.0 unless the model wrote what it should not have)."""
    known = [s.reference_writes for s in report.samples if s.reference_writes is not None]
    if not known:
        return None
    writing = sum(known)
    if writing == len(known):
        return None
    rest = "in the others" if writing else "so"
    return (f"{label}: the reference changes state in {writing} of {len(known)} samples; {rest} "
            "outcome match is 1.0 unless the model wrote what it should not have")


def _outcome_cell(sample: SampleResult) -> str:
    value = sample.metrics.get("outcome_match")
    return "not evaluated" if value is None and not sample.reference_certified else _fmt(value)


def _fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}" if key == "qor_judge" else f"{value:.3f}"
    return str(value)


# --- the report record ---------------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrialRecord(_Record):
    trial: int
    stop: str
    calls: int
    passed: bool
    scores: dict[str, Any]  # the metrics of this trial
    errors: dict[str, int]


class SampleResult(_Record):
    line: int
    id: str
    seed: int
    envs: list[str]
    reference_tools: list[str]
    reference_certified: bool  # the reference replay gave the recorded statuses and state hashes
    reference_writes: bool | None = None  # a reference call changed state (None: a report from before this field)
    metrics: dict[str, float | None]  # mean over trials
    trials: list[TrialRecord]


class EvalReport(_Record):
    schema_version: str = REPORT_VERSION
    kind: str = "toolgrad-eval-report"
    model: str
    base_url: str
    judge: str = ""
    settings: dict[str, Any]
    dataset: dict[str, Any]  # sha256, samples, steps
    metrics: dict[str, Any]  # fractions 0..1 (qor_judge 0..100), pass^j, samples, trials
    errors: dict[str, int]
    per_env: dict[str, dict[str, Any]]
    samples: list[SampleResult]
    environments: list[dict[str, Any]]
    versions: dict[str, str]
    # headline metric -> {mean, low, high, n}: the 95% t-interval over samples (benchmarks/evaluate/stats.py)
    intervals: dict[str, dict[str, float]] = Field(default_factory=dict)


def build_report(dataset: Dataset, events: Sequence[TrialEvent], *, model: str, base_url: str,
                 settings: EvalSettings, backend: str, judge: str = "",
                 environments: list[dict[str, Any]] | None = None) -> EvalReport:
    """The report of a finished run (events in the order :func:`evaluate` yielded them)."""
    by_sample: dict[int, list[TrialEvent]] = {}
    for event in events:
        by_sample.setdefault(event.index, []).append(event)
    steps = sum(len(trials[0].sample.steps()) for trials in by_sample.values())
    scores: list[SampleScores] = []
    results: list[SampleResult] = []
    for index in sorted(by_sample):
        trials = by_sample[index]
        first = trials[0]
        envs = tuple(sorted({c.env for c in first.reference.calls} or set(first.reference.state)))
        ss = SampleScores(first.sample.id, envs, [t.score for t in trials])
        scores.append(ss)
        results.append(SampleResult(
            line=first.line, id=first.sample.id, seed=first.sample.seed, envs=list(envs),
            reference_tools=sorted({c.tool for c in first.reference.calls}),
            reference_certified=first.reference_divergence is None,
            reference_writes=any(c.wrote for c in first.reference.calls),
            metrics={name: ss.metric(name) for name in SCORE_FIELDS},
            trials=[TrialRecord(trial=t.trial, stop=t.run.stop, calls=len(t.run.calls), passed=t.score.passed,
                                scores={name: getattr(t.score, name) for name in SCORE_FIELDS},
                                errors=t.score.errors) for t in trials],
        ))
    report = EvalReport(
        model=model, base_url=base_url, judge=judge,
        settings={"k": settings.k, "max_steps": settings.max_steps, "temperature": settings.temperature,
                  "max_tokens": settings.max_tokens, "backend": backend},
        dataset={"name": dataset.path.name, "sha256": dataset.sha256, "samples": len(dataset.lines),
                 "steps": steps},
        metrics=aggregate(scores, settings.k),
        errors=error_totals(scores),
        per_env=per_environment(scores),
        samples=results,
        environments=environments or [],
        versions=versions(),
    )
    report.intervals = interval_record(report)
    return report


def trace_record(event: TrialEvent) -> dict[str, Any]:
    """One line of the traces file: everything the model saw and did in one trial."""
    return {
        "line": event.line,
        "sample": event.sample.id,
        "trial": event.trial,
        "stop": event.run.stop,
        "error": event.run.error,
        "answer": event.run.answer,
        "calls": [{"tool": c.tool, "env": c.env, "arguments": c.arguments, "status": c.status,
                   "wrote": c.wrote, "error": c.error} for c in event.run.calls],
        "messages": event.run.messages,
        "usage": {"completions": event.run.completions, "prompt_tokens": event.run.prompt_tokens,
                  "completion_tokens": event.run.completion_tokens},
        "scores": {name: getattr(event.score, name) for name in SCORE_FIELDS},
        "errors": event.score.errors,
        "judge_reason": event.judge_reason,
        "reference": {"tools": [c.tool for c in event.reference.calls],
                      "key_values": list(event.reference.key_values),
                      "state": dict(event.reference.state)},
    }


# --- Markdown ------------------------------------------------------------------------------------


def render_markdown(reports: Sequence[EvalReport]) -> str:
    """Headline metrics (a column per run), per-environment success and outcome, the error
    breakdown, and the settings."""
    if not reports:
        raise ReportError("no report to render")
    labels = [run_label(r, reports) for r in reports]
    rows = {key: name for r in reports for key, name in _headline(r)}
    out = ["# Tool-use evaluation", ""]
    for r, label in zip(reports, labels, strict=True):
        out.append(f"- **{label}**: dataset `{r.dataset.get('name', '')}` (sha256 {str(r.dataset.get('sha256', ''))[:12]}, "
                   f"{r.dataset.get('samples')} samples), k={r.settings.get('k')}, max steps "
                   f"{r.settings.get('max_steps')}, temperature {r.settings.get('temperature')}, "
                   f"backend {r.settings.get('backend')}, base URL `{r.base_url}`"
                   + (f", judge `{r.judge}`" if r.judge else ""))
    spans = [intervals(r) for r in reports]
    out += ["", "## Metrics (95% intervals over samples)", "", _md_table(
        ["metric", *labels], [[name, *(with_interval(_fmt(r.metrics.get(key), key), span.get(key))
                                       for r, span in zip(reports, spans, strict=True))]
                              for key, name in rows.items()])]
    notes = [note for r, label in zip(reports, labels, strict=True)
             for note in (not_evaluated_note(r, label), writes_note(r, label)) if note]
    out += ["", *(f"- {note}" for note in notes)] if notes else []
    for other in reports[1:]:
        if comparable(reports[0], other):
            header, table = paired_table(reports[0], other)
            out += ["", f"## Paired t-test: {other.model} against {reports[0].model}", "", _md_table(header, table)]
    out += ["", "## Per environment", ""]
    envs = sorted({e for r in reports for e in r.per_env})
    header = ["environment", *(f"{name} ({label})" if len(reports) > 1 else name
                               for label in labels for _, name in ENV_METRICS), "samples"]
    table = []
    for env in envs:
        cells = [env]
        for r in reports:
            cells += [_fmt(r.per_env.get(env, {}).get(key)) for key, _ in ENV_METRICS]
        cells.append(str(max(int(r.per_env.get(env, {}).get("samples", 0)) for r in reports)))
        table.append(cells)
    out.append(_md_table(header, table))
    out += ["", "## Errors (counts over all trials)", "",
            _md_table(["error", *labels], [[kind, *(str(r.errors.get(kind, 0)) for r in reports)]
                                           for kind in ERROR_KINDS])]
    if len(reports) == 1:
        r = reports[0]
        out += ["", "## Samples", "", _md_table(
            ["line", "sample", "success", "outcome", "recall", "stops"],
            [[str(s.line), s.id[:12], _fmt(s.metrics.get("success_rate")), _outcome_cell(s),
              _fmt(s.metrics.get("tool_recall")), ", ".join(t.stop for t in s.trials)] for s in r.samples])]
    out.append("")
    return "\n".join(out)


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [line(header), "|" + "|".join("---" for _ in header) + "|"]
    lines += [line(r) for r in rows]
    return "\n".join(lines)


# --- SVG -----------------------------------------------------------------------------------------


def bar_chart(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
              *, maximum: float = 1.0, percent: bool = True) -> str:
    """A grouped vertical bar chart as an inline ``<svg>``: one group per category, one bar per
    series (a missing value draws no bar and says n/a)."""
    width_bar, gap, pad_left, pad_top, height = 18, 14, 44, 34, 180
    groups = max(1, len(categories))
    per_group = max(1, len(series)) * width_bar + gap
    width = max(pad_left + groups * per_group + 20, pad_left + int(len(title) * 7.5) + 10, 240)
    legend_h = 18 * len(series)
    total_h = pad_top + height + 70 + legend_h
    maximum = maximum if maximum > 0 else 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{total_h}" '
             f'viewBox="0 0 {width} {total_h}" font-family="sans-serif" font-size="11">',
             f"<title>{html.escape(title)}</title>",
             f'<text x="{pad_left}" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    for i in range(5):
        frac = i / 4
        y = pad_top + height - frac * height
        label = f"{frac * maximum * (100 if percent else 1):.0f}" + ("%" if percent else "")
        parts.append(f'<line x1="{pad_left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{pad_left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{label}</text>')
    for gi, category in enumerate(categories):
        x0 = pad_left + gi * per_group + gap / 2
        for si, (_, values) in enumerate(series):
            value = values[gi] if gi < len(values) else None
            x = x0 + si * width_bar
            colour = PALETTE[si % len(PALETTE)]
            if value is None:
                parts.append(f'<text x="{x + width_bar / 2:.1f}" y="{pad_top + height - 4}" text-anchor="middle" '
                             f'fill="#999" font-size="8">n/a</text>')
                continue
            h = max(0.0, min(1.0, value / maximum)) * height
            y = pad_top + height - h
            shown = f"{value * 100:.0f}%" if percent else f"{value:g}"
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width_bar - 2}" height="{h:.1f}" fill="{colour}">'
                         f"<title>{html.escape(category)}: {shown}</title></rect>")
            parts.append(f'<text x="{x + (width_bar - 2) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                         f'font-size="8" fill="#333">{shown}</text>')
        cx = x0 + len(series) * width_bar / 2
        parts.append(f'<text x="{cx:.1f}" y="{pad_top + height + 14}" text-anchor="end" '
                     f'transform="rotate(-30 {cx:.1f} {pad_top + height + 14})">{html.escape(category)}</text>')
    for si, (name, _) in enumerate(series):
        y = pad_top + height + 66 + 18 * si
        parts.append(f'<rect x="{pad_left}" y="{y - 10}" width="12" height="12" fill="{PALETTE[si % len(PALETTE)]}"/>')
        parts.append(f'<text x="{pad_left + 18}" y="{y}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --- HTML ----------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}.muted{color:#666;font-size:90%}
"""


# Over 60 lines: the page's sections in reading order; each chart and table is built by a helper.
def render_html(reports: Sequence[EvalReport]) -> str:
    """One static page: headline chart and table, a chart per metric over environments, the
    error breakdown, and (for one run) the sample table."""
    if not reports:
        raise ReportError("no report to render")
    labels = [run_label(r, reports) for r in reports]
    rows = {key: name for r in reports for key, name in _headline(r) if key != "qor_judge"}
    body = ["<h1>Tool-use evaluation</h1>", "<ul>"]
    for r, label in zip(reports, labels, strict=True):
        body.append(f"<li><b>{html.escape(label)}</b> <span class=muted>dataset {html.escape(str(r.dataset.get('name')))} "
                    f"({html.escape(str(r.dataset.get('sha256', ''))[:12])}, {r.dataset.get('samples')} samples), "
                    f"k={r.settings.get('k')}, max steps {r.settings.get('max_steps')}, backend "
                    f"{html.escape(str(r.settings.get('backend')))}, base URL {html.escape(r.base_url)}</span></li>")
    body.append("</ul><h2>Metrics</h2><div class=charts>")
    body.append(bar_chart("Metrics by model", list(rows.values()),
                          [(label, [r.metrics.get(k) for k in rows]) for r, label in zip(reports, labels, strict=True)]))
    if any(r.metrics.get("qor_judge") is not None for r in reports):
        body.append(bar_chart("QoR (judge)", ["QoR"], [(label, [r.metrics.get("qor_judge")])
                                                      for r, label in zip(reports, labels, strict=True)],
                              maximum=100, percent=False))
    body.append("</div>")
    spans = [intervals(r) for r in reports]
    body.append(_html_table(["metric (95% interval)", *labels],
                            [[name, *(with_interval(_fmt(r.metrics.get(k), k), span.get(k))
                                      for r, span in zip(reports, spans, strict=True))]
                             for k, name in _headline_all(reports)]))
    for r, label in zip(reports, labels, strict=True):
        for note in (not_evaluated_note(r, label), writes_note(r, label)):
            if note:
                body.append(f"<p class=muted>{html.escape(note)}</p>")
    for other in reports[1:]:
        if comparable(reports[0], other):
            header, table = paired_table(reports[0], other)
            body.append(f"<h2>Paired t-test: {html.escape(other.model)} against {html.escape(reports[0].model)}</h2>")
            body.append(_html_table(header, table))
    envs = sorted({e for r in reports for e in r.per_env})
    body.append("<h2>Per environment</h2><div class=charts>")
    for key, name in ENV_METRICS:
        body.append(bar_chart(f"{name} by environment", envs,
                              [(label, [r.per_env.get(e, {}).get(key) for e in envs])
                               for r, label in zip(reports, labels, strict=True)]))
    body.append("</div>")
    header = ["environment", *(f"{name} ({label})" for label in labels for _, name in ENV_METRICS)]
    body.append(_html_table(header, [[e, *(_fmt(r.per_env.get(e, {}).get(k)) for r in reports for k, _ in ENV_METRICS)]
                                     for e in envs]))
    body.append("<h2>Errors</h2><div class=charts>")
    top = max([1, *(n for r in reports for n in r.errors.values())])
    body.append(bar_chart("Errors (counts over all trials)", list(ERROR_KINDS),
                          [(label, [float(r.errors.get(k, 0)) for k in ERROR_KINDS])
                           for r, label in zip(reports, labels, strict=True)], maximum=float(top), percent=False))
    body.append("</div>")
    body.append(_html_table(["error", *labels], [[k, *(str(r.errors.get(k, 0)) for r in reports)] for k in ERROR_KINDS]))
    if len(reports) == 1:
        body.append("<h2>Samples</h2>")
        body.append(_html_table(
            ["line", "sample", "envs", "success", "outcome", "recall", "argument acc.", "stops"],
            [[str(s.line), s.id[:12], ", ".join(s.envs), _fmt(s.metrics.get("success_rate")),
              _outcome_cell(s), _fmt(s.metrics.get("tool_recall")),
              _fmt(s.metrics.get("argument_accuracy")), ", ".join(t.stop for t in s.trials)]
             for s in reports[0].samples]))
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>Tool-use evaluation</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _headline_all(reports: Sequence[EvalReport]) -> list[tuple[str, str]]:
    return list({key: name for r in reports for key, name in _headline(r)}.items())


def _html_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- a run directory -----------------------------------------------------------------------------


def write_run(directory: Path, report: EvalReport, traces: Iterable[dict[str, Any]]) -> dict[str, Path]:
    """Write report.json, report.md, report.html and traces.jsonl into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / name for name in ("report.json", "report.md", "report.html", "traces.jsonl")}
    write_lines_atomic(paths["traces.jsonl"],
                       (json.dumps(r, sort_keys=True, ensure_ascii=False).encode() + b"\n" for r in traces))
    write_text_atomic(paths["report.md"], render_markdown([report]))
    write_text_atomic(paths["report.html"], render_html([report]))
    write_bytes_atomic(paths["report.json"], report_bytes(report))  # last: its presence means a whole run
    return paths

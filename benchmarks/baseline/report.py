"""The comparison as tables: ``compare.md`` (and the rows the CLI prints), ``compare.json``.

With a model the tables show model calls and tokens per certified sample; offline, where neither
generator calls a model, they show *decisions* instead, labelled so. Every figure carries its 95%
interval (see :mod:`benchmarks.baseline.figures`).
"""

from __future__ import annotations

from pathlib import Path

from simulator.canonical import pretty_json
from toolgrad.dataset.files import write_text_atomic

from .compare import PAPER, Comparison, Group, MethodResult
from .figures import Estimate

Row = tuple[str, ...]


def estimate_text(e: Estimate, *, percent: bool = False, digits: int = 1) -> str:
    """``12.3 [10.1, 15.0]``; ``18.2% [14.7, 22.3]``; ``[10.1, ∞)`` high bound unbounded; ``-`` undefined."""
    if e.value is None:
        return "-"

    def num(v: float) -> str:
        return f"{v * 100:.{digits}f}" if percent else f"{v:,.{digits}f}"

    value = num(e.value) + ("%" if percent else "")
    if e.low is None:
        return value
    high = "∞)" if e.high is None else f"{num(e.high)}]"
    return f"{value} [{num(e.low)}, {high}"


def offline(comparison: Comparison) -> bool:
    return comparison.settings.get("llm") == "offline"


def _pass(r: MethodResult) -> str:
    return f"{estimate_text(r.figures.pass_rate, percent=True)} ({r.certified}/{r.attempted})"


def summary_rows(comparison: Comparison, group: Group | None = None) -> list[Row]:
    """(metric, ToolGrad, DFSDT, paper ToolGrad / DFS) for ``group`` (default: pooled)."""
    g = group or comparison.total
    t, d = g.toolgrad, g.dfs
    paper = {k: f"{v['toolgrad']:g} / {v['dfs']:g}" for k, v in PAPER.items()}
    rows: list[Row] = [
        ("pass rate after certification (all checks) [95% CI]", _pass(t), _pass(d),
         f"{PAPER['pass_rate']['toolgrad']:.0%} / {PAPER['pass_rate']['dfs']:.1%}"),
        ("samples written / certified", f"{t.written} / {t.certified}", f"{d.written} / {d.certified}", ""),
    ]
    if offline(comparison):
        rows.append(("decisions (not model calls) / certified sample, all attempts",
                     estimate_text(t.figures.decisions_per_certified), estimate_text(d.figures.decisions_per_certified),
                     ""))
        rows.append(("model calls", str(t.model_calls), str(d.model_calls), paper["model_calls_per_sample"]))
    else:
        rows += [
            ("model calls / certified sample, all attempts", estimate_text(t.figures.model_calls_per_certified),
             estimate_text(d.figures.model_calls_per_certified), paper["model_calls_per_sample"]),
            ("tokens / certified sample, all attempts", estimate_text(t.figures.tokens_per_certified, digits=0),
             estimate_text(d.figures.tokens_per_certified, digits=0), ""),
            ("model calls / attempted seed", estimate_text(t.figures.model_calls_per_attempt),
             estimate_text(d.figures.model_calls_per_attempt), ""),
            ("model calls, tokens in total", f"{t.model_calls:,}, {t.prompt_tokens + t.completion_tokens:,}",
             f"{d.model_calls:,}, {d.prompt_tokens + d.completion_tokens:,}", ""),
        ]
    rows += [
        ("tool calls / sample (certified)", estimate_text(t.figures.tool_calls_per_sample),
         estimate_text(d.figures.tool_calls_per_sample), paper["tool_calls_per_sample"]),
        ("tool calls executed, all attempts", str(t.tool_calls_executed), str(d.tool_calls_executed), ""),
        ("generation / certification wall time (s)", f"{t.generate_seconds:.1f} / {t.certify_seconds:.1f}",
         f"{d.generate_seconds:.1f} / {d.certify_seconds:.1f}", ""),
    ]
    return rows


SUMMARY_HEADER: Row = ("metric", "ToolGrad (answer-first)", "DFSDT (query-first)", "paper (ToolGrad / DFS)")


def group_header(comparison: Comparison) -> Row:
    cost = "decisions / certified" if offline(comparison) else "model calls / certified"
    head: Row = ("environment", "pass rate TG", "pass rate DFS", f"{cost} TG", f"{cost} DFS")
    if not offline(comparison):
        head += ("tokens / certified TG", "tokens / certified DFS")
    return (*head, "tool calls / sample TG", "tool calls / sample DFS")


def group_rows(comparison: Comparison) -> list[Row]:
    """One row per group and one for the pool: pass rates, cost and tool calls, both generators."""
    rows = []
    groups = [*comparison.groups, comparison.total] if len(comparison.groups) > 1 else comparison.groups
    for g in groups:
        name = "pooled" if g is comparison.total else ", ".join(g.environments)
        t, d = g.toolgrad.figures, g.dfs.figures
        if offline(comparison):
            cost: Row = (estimate_text(t.decisions_per_certified), estimate_text(d.decisions_per_certified))
        else:
            cost = (estimate_text(t.model_calls_per_certified), estimate_text(d.model_calls_per_certified),
                    estimate_text(t.tokens_per_certified, digits=0), estimate_text(d.tokens_per_certified, digits=0))
        rows.append((name, _pass(g.toolgrad), _pass(g.dfs), *cost, estimate_text(t.tool_calls_per_sample),
                     estimate_text(d.tool_calls_per_sample)))
    return rows


def _md_table(header: Row, rows: list[Row]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _budget_line(comparison: Comparison) -> str:
    b = comparison.budget
    t, d = b["toolgrad"], b["dfs"]
    return (f"Budget per seed, both generators: at most {t['max_model_calls']} model calls "
            f"({'decisions, for DFSDT' if offline(comparison) else 'the query and every retry of a stage included'}); "
            f"tool set {t['batch_size']} (ToolGrad's mini-batch, DFSDT's sampled set). ToolGrad: {t['iterations']} "
            f"iterations x {t['proposals']} proposals. DFSDT: {d['width']} children per node, paths of at most "
            f"{d['max_depth']} tree nodes.")


def render_markdown(comparison: Comparison) -> str:
    s = comparison.settings
    lines = ["# ToolGrad (answer-first) vs DFSDT (query-first)", ""]
    if comparison.command:
        lines += ["```", comparison.command, "```", ""]
    model = f" ({s['model']}, temperature {s['temperature']:g})" if s.get("model") else ""
    lines += [
        f"Seeds {comparison.seed}..{comparison.seed + s['n'] - 1}: {s['n']} attempted per generator"
        f"{' per environment' if s['per_env'] else ''}; backend `{s['llm']}`{model}; environments: "
        f"{', '.join(comparison.total.environments)}.",
        _budget_line(comparison), "",
    ]
    lines += _md_table(SUMMARY_HEADER, summary_rows(comparison))
    if len(comparison.groups) > 1:
        lines += ["", "## Per environment", ""]
        lines += _md_table(group_header(comparison), group_rows(comparison))
    lines += ["", NOTES, ""]
    if offline(comparison):
        lines += [OFFLINE_NOTE, ""]
    return "\n".join(lines)


NOTES = (
    "Pass rate: samples that pass every check of `toolgrad certify` (replay on fresh sandboxes, solvable, "
    "grounded, coherent, unique) over seeds attempted; 95% Wilson interval. Per certified sample, all "
    "attempts: what every seed spent, failed seeds included, over the certified samples; model calls are "
    "completions asked for plus repair turns, tokens the server's; 95% percentile bootstrap over seeds "
    "(2,000 resamples, within each environment when pooled); `∞` when too many resamples hold no certified "
    "sample, `-` when none is certified. Tool calls / sample: steps in a certified sample's chains. "
    "Paper: arXiv 2508.04086.")
OFFLINE_NOTE = (
    "Offline neither generator calls a model: \"decisions\" counts the calls a model backend would have been "
    "asked for the same trace (ToolGrad: a proposal, a turn per call and a closing turn per execution, a "
    "selection and an update per iteration; DFSDT: the query and one per expansion). They are not model calls.")


def write_comparison(comparison: Comparison, folder: Path) -> tuple[Path, Path]:
    """``compare.json`` (sorted keys, two-space indent) and ``compare.md`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "compare.json", folder / "compare.md"
    data = comparison.model_dump(mode="json")
    write_text_atomic(json_path, pretty_json(data))
    write_text_atomic(md_path, render_markdown(comparison))
    return json_path, md_path

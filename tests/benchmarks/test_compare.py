"""``toolgrad bench compare``: both generators on the same environments, certified by the same
checks, every seed tallied (failed ones included), figures with 95% intervals per environment and
pooled; with a model, every call both generators send is counted, against the scripted server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmarks.baseline.compare import (
    PAPER,
    CompareSettings,
    Comparison,
    MethodResult,
    decision_count,
    read_comparison,
    run_comparison,
)
from benchmarks.baseline.report import render_markdown, write_comparison
from benchmarks.cli.app import app
from tests.support import scripted_server as scripted
from toolgrad.dataset.lines import read_samples

ENVS = ["museum", "links"]
N = 6


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Comparison, Path]:
    out = tmp_path_factory.mktemp("compare")
    comparison = run_comparison(CompareSettings(envs=ENVS, n=N, seed=3, per_env=True, output=str(out)))
    write_comparison(comparison, out)
    return comparison, out


def test_both_generators_run_on_the_same_environments(compared: tuple[Comparison, Path]) -> None:
    comparison, out = compared
    assert [g.environments for g in comparison.groups] == [["museum"], ["links"]]
    for group in comparison.groups:
        folder = out / group.environments[0]
        tg = list(read_samples(folder / "toolgrad.jsonl", traces=True))
        dfs = list(read_samples(folder / "dfs.jsonl", traces=True))
        assert {s.provenance.generator.get("method", "toolgrad") for s in tg} == {"toolgrad"}
        assert {s.provenance.generator["method"] for s in dfs} <= {"dfs"}
        for samples in (tg, dfs):
            assert {e for s in samples for e in s.provenance.environments} <= set(group.environments)
        assert (folder / "toolgrad.certificate.json").exists()
        assert {s.provenance.generator["batch_size"] for s in tg + dfs} == {50}  # the same tool set size


def _check(result: MethodResult, samples: list, certified_lines: set[int]) -> None:
    certified = [s for i, s in enumerate(samples, 1) if i in certified_lines]
    assert [s.seed for s in result.seeds] == list(range(3, 3 + N))
    assert result.written == len(samples) == sum(s.written for s in result.seeds)
    assert result.certified == len(certified) <= result.written <= result.attempted == N
    assert {s.seed for s in result.seeds if s.certified} == {s.seed for s in certified}
    assert all(s.error for s in result.seeds if not s.written)
    figures = result.figures
    assert figures.pass_rate.value == pytest.approx(result.certified / result.attempted, abs=1e-4)
    assert figures.pass_rate.low <= figures.pass_rate.value <= figures.pass_rate.high
    if certified:
        steps = [len(s.steps()) for s in certified]
        assert figures.tool_calls_per_sample.value == pytest.approx(sum(steps) / len(steps), abs=1e-3)
        assert min(steps) <= figures.tool_calls_per_sample.low <= figures.tool_calls_per_sample.value
        assert figures.tool_calls_per_sample.high is None or figures.tool_calls_per_sample.high <= max(steps)
        # offline: decisions over every attempt (failed seeds included) per certified sample
        if all(s.decisions is not None for s in result.seeds):
            total = sum(s.decisions or 0 for s in result.seeds)
            assert figures.decisions_per_certified.value == pytest.approx(total / len(certified), abs=1e-3)
        assert result.tool_calls_executed >= sum(steps)


def test_figures_are_computed_from_the_records(compared: tuple[Comparison, Path]) -> None:
    comparison, out = compared
    for group in comparison.groups:
        folder = out / group.environments[0]
        for method, result in (("toolgrad", group.toolgrad), ("dfs", group.dfs)):
            path = folder / f"{method}.jsonl"
            samples = list(read_samples(path, traces=True)) if path.stat().st_size else []
            verdicts = json.loads((folder / f"{method}.certificate.json").read_text())["samples"] if samples else []
            _check(result, samples, {v["line"] for v in verdicts if v["ok"]})
            by_seed = {s.seed: s for s in samples}
            for seed in result.seeds:  # the offline decisions are what the trace records
                if seed.written and seed.decisions is not None:
                    assert seed.decisions == decision_count(by_seed[seed.seed])


def test_answer_first_certifies_everything_and_dfs_counts_its_failures(compared: tuple[Comparison, Path]) -> None:
    comparison, _ = compared
    total = comparison.total
    assert total.toolgrad.figures.pass_rate.value == 1.0  # answer-first: every attempt certifies
    assert total.toolgrad.attempted == total.dfs.attempted == N * len(ENVS)
    # query-first: some queries are never solved, and what is solved is certified by the same checks
    assert total.dfs.certified <= total.dfs.written < total.dfs.attempted
    # offline: no model calls, but the decisions a model would have been asked are counted
    assert total.toolgrad.model_calls == total.dfs.model_calls == 0
    assert all(s.decisions for s in total.dfs.seeds + total.toolgrad.seeds)
    # (undefined, not 0 or infinite, when nothing certifies: offline DFSDT often certifies nothing here)
    assert (total.dfs.figures.decisions_per_certified.value is None) == (total.dfs.certified == 0)
    # the pool is every group's seeds, its intervals resampled within each environment
    for field in ("attempted", "written", "certified", "tool_calls_executed"):
        assert getattr(total.dfs, field) == sum(getattr(g.dfs, field) for g in comparison.groups)
        assert getattr(total.toolgrad, field) == sum(getattr(g.toolgrad, field) for g in comparison.groups)
    assert [s.group for s in total.dfs.seeds] == ["museum"] * N + ["links"] * N
    assert comparison.budget["dfs"]["max_model_calls"] == comparison.budget["toolgrad"]["max_model_calls"] == 200


def test_reports_hold_both_columns_intervals_and_the_paper(compared: tuple[Comparison, Path]) -> None:
    comparison, out = compared
    data = json.loads((out / "compare.json").read_text())
    assert read_comparison(out / "compare.json") == comparison
    assert data["paper"] == PAPER
    assert data["seed"] == 3 and data["schema_version"] == "2"
    md = (out / "compare.md").read_text()
    assert md == render_markdown(comparison)
    assert "| pass rate after certification (all checks) [95% CI] | 100.0% [" in md
    assert "63.8%" in md and "64.5" in md and "3.3" in md
    assert "## Per environment" in md and "| museum |" in md and "| pooled |" in md
    # offline, the cost is labelled as decisions, never as model calls
    assert "decisions (not model calls) / certified sample" in md and "They are not model calls." in md
    assert "model calls / certified sample" not in md


def test_cli_compare_writes_the_reports(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["bench", "compare", "--env", "museum", "--n", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "pass rate" in result.output and "DFSDT" in result.output
    data = json.loads((out / "compare.json").read_text())
    assert data["total"]["toolgrad"]["attempted"] == data["total"]["dfs"]["attempted"] == 3
    assert (out / "toolgrad.jsonl").exists() and (out / "dfs.jsonl").exists()


def test_cli_compare_needs_a_model_for_openai(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "compare", "--llm", "openai", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "--model" in result.output


def test_cli_compare_refuses_a_bad_budget(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "compare", "--max-model-calls", "1", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "--max-model-calls" in result.output  # at least the query and one more


# -- a model: both generators against the scripted server ------------------------------------------

HOURS = "museum__getMuseumHours"
# tokens per reply, by the module that asked: the sums below are exact
TOKENS = {"propose": (100, 10), "execute": (60, 6), "select": (40, 4), "update": (80, 8),
          "dfs query": (90, 9), "dfs expand": (70, 7)}


def _schema(request: dict[str, Any]) -> dict[str, Any]:
    fmt = request.get("response_format") or {}
    return dict((fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or {})


def module_of(request: dict[str, Any]) -> str:
    props = _schema(request).get("properties", {})
    if "proposals" in props:
        return "propose"
    if "choice" in props:
        return "select"
    if "answer" in props:
        return "update"
    if "tools" in props:
        return "dfs query"
    names = {t["function"]["name"] for t in request.get("tools") or []}
    return "dfs expand" if "Finish" in names else "execute"


def _opening_day(text: str) -> str:
    found = re.search(r'"date":\s*"([^"]+)"', text)
    assert found, text
    return found.group(1)


def _reply(module: str, request: dict[str, Any]) -> Any:
    tokens = dict(zip(("prompt_tokens", "completion_tokens"), TOKENS[module], strict=True))
    messages = request["messages"]
    if module == "propose":
        return scripted.json_reply({"proposals": [{"instruction": "Show the opening hours.", "tools": [HOURS]}]}, **tokens)
    if module == "select":
        return scripted.json_reply({"choice": 0, "action": "new", "chain": None, "rationale": "It works."}, **tokens)
    if module == "update":  # cite what the call returned, as the updater is told to
        answer = f"The museum is open on '{_opening_day(messages[-1]['content'])}'."
        return scripted.json_reply({"query": "When is the museum open?", "answer": answer}, **tokens)
    if module == "dfs query":
        return scripted.json_reply({"query": "When is the museum open?", "tools": [HOURS, "museum__listSpecialEvents"]},
                                   **tokens)
    results = [m["content"] for m in messages if m["role"] == "tool"]
    if module == "execute" and results:
        return scripted.text_reply("Done.", **tokens)
    if module == "execute" or not results:
        return scripted.tool_call_reply((HOURS, {}), **tokens)
    answer = f"The museum is open on '{_opening_day(results[0])}'."
    return scripted.tool_call_reply(("Finish", {"return_type": "give_answer", "final_answer": answer}), **tokens)


def play(request: dict[str, Any]) -> Any:
    return _reply(module_of(request), request)


def _spent_by_method(requests: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """(requests, tokens) the server saw from each generator."""
    spent = {"toolgrad": [0, 0], "dfs": [0, 0]}
    for request in requests:
        module = module_of(request)
        method = "dfs" if module.startswith("dfs") else "toolgrad"
        spent[method][0] += 1
        spent[method][1] += sum(TOKENS[module])
    return {k: (v[0], v[1]) for k, v in spent.items()}


def _model_settings(server: Any, tmp_path: Path, **kw: Any) -> CompareSettings:
    return CompareSettings(**{"envs": ["museum"], "n": 2, "seed": 0, "llm": "openai", "model": server.model,
                              "base_url": server.base_url, "iterations": 2, "proposals": 1,
                              "output": str(tmp_path), **kw})


def test_with_a_model_every_call_of_both_generators_is_counted(scripted_openai: Any, tmp_path: Path) -> None:
    scripted_openai.script(play)
    comparison = run_comparison(_model_settings(scripted_openai, tmp_path))
    seen = _spent_by_method(scripted_openai.requests)
    for method, result in (("toolgrad", comparison.total.toolgrad), ("dfs", comparison.total.dfs)):
        calls, tokens = seen[method]
        assert result.model_calls == result.http_requests == calls, method
        assert result.prompt_tokens + result.completion_tokens == tokens, method
        assert sum(s.model_calls for s in result.seeds) == calls
        assert result.certified == 2, [s.error for s in result.seeds]
        assert result.figures.model_calls_per_certified.value == pytest.approx(calls / 2)
        assert result.figures.tokens_per_certified.value == pytest.approx(tokens / 2)
    # per seed: ToolGrad two iterations of propose, two executor turns, select, update; DFSDT the
    # query, one call, Finish
    assert [s.model_calls for s in comparison.total.toolgrad.seeds] == [10, 10]
    assert [s.model_calls for s in comparison.total.dfs.seeds] == [3, 3]
    md = render_markdown(comparison)
    assert "model calls / certified sample, all attempts | 10.0 [10.0, 10.0] | 3.0 [3.0, 3.0] | 45.9 / 64.5 |" in md
    assert "decisions" not in md.split("## Per environment")[0].split("| metric")[1]


def test_with_a_model_both_generators_get_the_same_cap(scripted_openai: Any, tmp_path: Path) -> None:
    scripted_openai.script(play)
    comparison = run_comparison(_model_settings(scripted_openai, tmp_path, max_model_calls=3))
    seen = _spent_by_method(scripted_openai.requests)
    assert seen["toolgrad"][0] == seen["dfs"][0] == 2 * 3  # no request past the cap, on either side
    toolgrad, dfs = comparison.total.toolgrad, comparison.total.dfs
    assert [s.model_calls for s in toolgrad.seeds] == [s.model_calls for s in dfs.seeds] == [3, 3]
    # three calls are not enough for propose, two executor turns, select and update: the answer-first
    # seeds fail (and still count), while the query-first search is done in three
    assert toolgrad.certified == 0 and all(not s.written and s.error for s in toolgrad.seeds)
    assert toolgrad.figures.model_calls_per_certified.value is None  # nothing to divide by
    assert dfs.certified == 2
    assert comparison.budget["toolgrad"]["max_model_calls"] == comparison.budget["dfs"]["max_model_calls"] == 3

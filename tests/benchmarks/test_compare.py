"""``toolgrad bench compare``: both generators on the same environments, certified, tallied from
their records, and reported side by side with the paper's figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.compare import (
    PAPER,
    CompareSettings,
    Comparison,
    MethodResult,
    decision_count,
    read_comparison,
    render_markdown,
    run_comparison,
    write_comparison,
)
from toolgrad.dataset import read_samples

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
        tg = list(read_samples(folder / "toolgrad.jsonl"))
        dfs = list(read_samples(folder / "dfs.jsonl"))
        assert {s.provenance.generator.get("method", "toolgrad") for s in tg} == {"toolgrad"}
        assert {s.provenance.generator["method"] for s in dfs} <= {"dfs"}
        for samples in (tg, dfs):
            assert {e for s in samples for e in s.provenance.environments} <= set(group.environments)
        assert (folder / "toolgrad.certificate.json").exists()


def _check(result: MethodResult, samples: list, certified_lines: set[int]) -> None:
    certified = [s for i, s in enumerate(samples, 1) if i in certified_lines]
    assert result.written == len(samples)
    assert result.certified == len(certified) <= result.written <= result.attempted == N
    assert 0.0 <= result.pass_rate <= 1.0
    assert result.pass_rate == pytest.approx(result.certified / result.attempted)
    if certified:
        assert result.tool_calls_per_sample == pytest.approx(
            sum(len(s.steps()) for s in certified) / len(certified), abs=1e-3)
        assert result.decisions_per_sample == pytest.approx(
            sum(decision_count(s) for s in certified) / len(certified), abs=1e-3)
        assert result.model_calls_per_sample == pytest.approx(
            sum(s.cost.model_calls for s in certified) / len(certified), abs=1e-3)
        # the run executed at least what its certified samples hold
        assert result.tool_calls >= sum(len(s.steps()) for s in certified)
        assert result.tool_calls >= sum(s.cost.tool_calls for s in certified)


def test_figures_are_computed_from_the_records(compared: tuple[Comparison, Path]) -> None:
    comparison, out = compared
    for group in comparison.groups:
        folder = out / group.environments[0]
        for method, result in (("toolgrad", group.toolgrad), ("dfs", group.dfs)):
            path = folder / f"{method}.jsonl"
            samples = list(read_samples(path)) if path.stat().st_size else []
            verdicts = json.loads((folder / f"{method}.certificate.json").read_text())["samples"] if samples else []
            _check(result, samples, {v["line"] for v in verdicts if v["ok"]})


def test_answer_first_certifies_everything_and_dfs_counts_its_failures(compared: tuple[Comparison, Path]) -> None:
    comparison, _ = compared
    total = comparison.total
    assert total.toolgrad.pass_rate == 1.0  # answer-first: every attempt becomes a certified sample
    assert total.toolgrad.attempted == total.dfs.attempted == N * len(ENVS)
    # query-first: some queries are never solved, and what is solved is certified by the same
    # checks (offline, its templated queries leave the body values the solver picks unstated)
    assert total.dfs.certified <= total.dfs.written < total.dfs.attempted
    # offline: no model calls, but the decisions a model would have made are counted
    assert total.toolgrad.model_calls == total.dfs.model_calls == 0
    assert total.dfs.decisions is not None and total.dfs.decisions > 0
    if total.dfs.decisions_per_certified is not None:
        assert total.dfs.decisions_per_certified >= (total.dfs.decisions_per_sample or 0)
    # the total pools the groups
    for field in ("attempted", "written", "certified", "tool_calls", "record_steps", "record_decisions"):
        assert getattr(total.dfs, field) == sum(getattr(g.dfs, field) for g in comparison.groups)
        assert getattr(total.toolgrad, field) == sum(getattr(g.toolgrad, field) for g in comparison.groups)
    assert comparison.budget["dfs"]["max_model_calls"] == 10 * (3 + 3)


def test_reports_hold_both_columns_and_the_paper(compared: tuple[Comparison, Path]) -> None:
    comparison, out = compared
    data = json.loads((out / "compare.json").read_text())
    assert read_comparison(out / "compare.json") == comparison
    assert data["paper"] == PAPER
    assert data["total"]["toolgrad"]["pass_rate"] == 1.0
    assert 0.0 <= data["total"]["dfs"]["pass_rate"] <= 1.0
    assert data["seed"] == 3
    md = (out / "compare.md").read_text()
    assert md == render_markdown(comparison)
    assert "| pass rate (certified / attempted) | 100.0% |" in md
    assert "63.8%" in md and "64.5" in md and "3.3" in md
    assert "## Per environment" in md and "| museum |" in md


def test_cli_compare_writes_the_reports(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["bench", "compare", "--env", "museum", "--n", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "pass rate" in result.output and "DFS" in result.output
    data = json.loads((out / "compare.json").read_text())
    assert data["total"]["toolgrad"]["attempted"] == data["total"]["dfs"]["attempted"] == 3
    assert (out / "toolgrad.jsonl").exists() and (out / "dfs.jsonl").exists()


def test_cli_compare_needs_a_model_for_openai(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "compare", "--llm", "openai", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "--model" in result.output

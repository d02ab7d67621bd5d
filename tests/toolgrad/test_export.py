"""Exports: the structure of each format, the negatives rate, determinism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from toolgrad.dataset.lines import read_samples
from toolgrad.dataset.runner import generate_dataset
from toolgrad.exports.openai import export_dataset, tool_name
from toolgrad.records import Sample
from toolgrad.settings import ExportSettings, GenerateSettings


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "data.jsonl"
    generate_dataset(GenerateSettings(envs=["petstore", "museum"], n=20, seed=0, output=str(path)))
    return path


@pytest.fixture(scope="module")
def samples(dataset: Path) -> list[Sample]:
    found = list(read_samples(dataset))
    assert len(found) >= 10
    return found


def export(dataset: Path, out: Path, fmt: str, **kw: Any) -> list[dict[str, Any]]:
    count = export_dataset(ExportSettings.model_validate({"input": str(dataset), "format": fmt,
                                                          "output": str(out), **kw}))
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert count == len(rows)
    return rows


def test_openai_format(dataset: Path, samples: list[Sample], tmp_path: Path) -> None:
    rows = export(dataset, tmp_path / "o.jsonl", "openai")
    assert len(rows) == len(samples)
    for row, sample in zip(rows, samples, strict=True):
        messages = row["messages"]
        assert messages[0] == {"role": "user", "content": sample.query}
        assert messages[-1] == {"role": "assistant", "content": sample.answer}
        middle = messages[1:-1]
        assert len(middle) == 2 * len(sample.steps())
        names = {tool_name(t) for t in row["tools"]}
        for (call, reply), step in zip(zip(middle[::2], middle[1::2], strict=True), sample.steps(), strict=True):
            assert call["role"] == "assistant" and len(call["tool_calls"]) == 1
            tc = call["tool_calls"][0]
            assert tc["type"] == "function" and tc["function"]["name"] == step.tool
            assert orjson.loads(tc["function"]["arguments"]) == step.arguments
            assert reply == {"role": "tool", "tool_call_id": tc["id"],
                             "content": reply["content"]}
            assert orjson.loads(reply["content"]) == {"status": step.status, "body": step.response}
            assert step.tool in names
        ids = [m["tool_calls"][0]["id"] for m in middle[::2]]
        assert len(set(ids)) == len(ids)


def test_calls_format_and_negatives(dataset: Path, samples: list[Sample], tmp_path: Path) -> None:
    rows = export(dataset, tmp_path / "b.jsonl", "calls", negatives=0.25, distractors=3)
    negatives = [r for r in rows if r["negative"]]
    assert len(negatives) == round(0.25 * len(samples))
    by_id = {s.id: s for s in samples}
    for row in rows:
        sample = by_id[row["id"]]
        system, user, assistant = row["messages"]
        assert system["role"] == "system" and user == {"role": "user", "content": sample.query}
        for name in row["tools"]:
            assert f'"name":"{name}"' in system["content"]
        relevant = {s.tool for s in sample.steps()}
        if row["negative"]:
            assert row["target"] == [] and not relevant & set(row["tools"])
        else:
            assert row["target"] == [{"name": s.tool, "arguments": s.arguments} for s in sample.steps()]
            assert relevant <= set(row["tools"])
            assert len(set(row["tools"]) - relevant) == 3
        assert orjson.loads(assistant["content"]) == row["target"]


def test_exports_are_deterministic_and_seeded(dataset: Path, tmp_path: Path) -> None:
    for fmt in ("openai", "calls"):
        a, b, c = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}", tmp_path / f"c.{fmt}"
        export(dataset, a, fmt)
        export(dataset, b, fmt)
        export(dataset, c, fmt, seed=1)
        assert a.read_bytes() == b.read_bytes()
        assert a.read_bytes() != c.read_bytes()


def test_no_negatives_at_rate_zero(dataset: Path, tmp_path: Path) -> None:
    rows = export(dataset, tmp_path / "z.jsonl", "calls", negatives=0.0)
    assert not any(r["negative"] for r in rows)


def test_cli_export(dataset: Path, tmp_path: Path) -> None:
    from benchmarks.cli.app import app

    out = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(app, ["export", str(dataset), "--format", "calls", "-o", str(out), "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert out.exists() and "wrote" in result.output


@pytest.mark.parametrize("names", [True, -1, "petstore", [1, 2], {"petstore": 1}])
def test_a_line_whose_run_environments_are_not_names_is_refused_with_exit_2(
        dataset: Path, tmp_path: Path, names: Any) -> None:
    # bad input: provenance.generator.environments that is not a list of names (found by a
    # structural fuzz: export failed with a TypeError traceback and exit 1)
    from benchmarks.cli.app import app

    record = orjson.loads(dataset.read_bytes().splitlines()[0])
    record["provenance"]["generator"]["environments"] = names
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(orjson.dumps(record) + b"\n")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["export", str(bad), "--format", "openai", "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "generator.environments must be a list of environment names" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()


class Lag:
    """How far a reader ran ahead of what was made from it: ``reader`` wraps a module's
    ``read_samples`` (each call is a new pass over the file), ``maker`` wraps the function
    that turns one sample into output. A streaming export makes sample k right after reading
    it (lag 0); one that read the whole file first makes the first sample N-1 samples late."""

    def __init__(self) -> None:
        self.read = self.made = 0
        self.lags: list[int] = []

    def reader(self, real: Any) -> Any:
        def read_samples(*args: Any, **kwargs: Any) -> Any:
            self.read = self.made = 0
            for sample in real(*args, **kwargs):
                self.read += 1
                yield sample
        return read_samples

    def maker(self, real: Any) -> Any:
        def make(*args: Any, **kwargs: Any) -> Any:
            self.made += 1
            self.lags.append(self.read - self.made)
            return real(*args, **kwargs)
        return make


@pytest.mark.parametrize(("fmt", "module", "maker"), [
    ("openai", "toolgrad.exports.openai", "openai_record"),
    ("calls", "toolgrad.exports.openai", "bfcl_record"),
    ("bfcl", "toolgrad.exports.bfcl", "classify"),
    ("hf", "toolgrad.exports.hf", "conversation"),
])
def test_exports_read_the_dataset_a_line_at_a_time(dataset: Path, samples: list[Sample], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, fmt: str, module: str,
                                                   maker: str) -> None:
    import importlib

    mod = importlib.import_module(module)
    lag = Lag()
    monkeypatch.setattr(mod, "read_samples", lag.reader(mod.read_samples))
    monkeypatch.setattr(mod, maker, lag.maker(getattr(mod, maker)))
    export_dataset(ExportSettings.model_validate({"input": str(dataset), "format": fmt,
                                                  "output": str(tmp_path / "out")}))
    assert len(lag.lags) == len(samples)  # every sample made into output once, each right after it was read
    assert set(lag.lags) == {0}

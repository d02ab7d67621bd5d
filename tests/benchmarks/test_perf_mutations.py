"""`toolgrad bench mutations`: samples broken on purpose, one kind at a time, and what certify
catches of each. The kinds a deterministic check must always catch are caught whole; the two it
cannot always see (a number off by one, a dropped last call) are reported, not hidden."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from benchmarks.perf.mutations import KINDS, Exemptions, main, write_broken
from toolgrad.dataset.runner import generate_dataset
from toolgrad.settings import GenerateSettings


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mutations") / "data.jsonl"
    generate_dataset(GenerateSettings(envs=["petstore", "museum", "crm"], n=12, seed=0, output=str(path)))
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    status = main([*args, "--json"])
    return status, json.loads(capsys.readouterr().out)


def test_every_break_a_check_must_see_is_caught_by_that_check(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, result = run(["--data", str(data), "--workdir", str(tmp_path)], capsys)
    assert status == 0
    rows = {row["kind"]: row for row in result["rows"]}
    assert list(rows) == ["none (control)", *KINDS, "duplicate"]
    assert rows["none (control)"]["samples"] == 12 and rows["none (control)"]["caught"] == 0
    for kind in ("answer-quoted", "query-value", "argument", "response", "duplicate"):
        row = rows[kind]
        assert row["samples"] > 0, kind
        assert row["caught"] == row["by_target"] == row["samples"], row
        if kind != "duplicate":
            assert result["escapes"][kind] == []
    for kind in ("answer-number", "last-step"):
        row = rows[kind]
        assert row["samples"] > 0 and row["by_target"] <= row["caught"] <= row["samples"], row
        assert len(result["escapes"][kind]) == row["samples"] - row["caught"]


def test_a_broken_line_keeps_its_trace_and_gets_its_id_computed_again(data: Path, tmp_path: Path) -> None:
    target = tmp_path / "response.jsonl"
    broken = write_broken(data, target, "response", Exemptions(data))
    before = [orjson.loads(line) for line in data.read_bytes().splitlines()]
    after = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert len(broken) == len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        assert new["id"] in broken and new["id"] != old["id"]
        assert new["trace_sha256"] == old["trace_sha256"] and new["chains"] != old["chains"]
    assert (tmp_path / "response.traces.jsonl").read_bytes() == data.with_suffix(".traces.jsonl").read_bytes()


def test_a_dataset_that_does_not_certify_is_refused_before_anything_is_broken(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # bad input: a dataset whose first line's answer quotes a value no response holds
    records = [orjson.loads(line) for line in data.read_bytes().splitlines()]
    records[0]["answer"] += " Its code is 'not-in-any-response'."
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    status, result = run(["--data", str(bad), "--workdir", str(tmp_path / "work")], capsys)
    assert status == 1
    assert result["error"] == "the dataset does not certify whole; nothing to break"
    assert [row["kind"] for row in result["rows"]] == ["none (control)"]
    assert result["rows"][0]["caught"] == 1
    assert not list((tmp_path / "work").glob("*.jsonl"))

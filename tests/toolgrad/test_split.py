"""``toolgrad split``: test samples share no tool-call sequence (or environment) with training
samples, the split is deterministic, and bad input is a one-line error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from toolgrad.dataset.runner import generate_dataset
from toolgrad.exports.split import overlap, split_file, split_records, tool_sequence
from toolgrad.settings import GenerateSettings, ToolgradError


def record(tools: list[str], env: str = "a") -> dict[str, Any]:
    return {"id": "-".join(tools) + env, "chains": [{"steps": [{"tool": t, "env": env} for t in tools]}]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("split") / "data.jsonl"
    generate_dataset(GenerateSettings(envs=["petstore", "museum"], n=30, seed=0, output=str(path)))
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_equal_sequences_never_straddle_the_split() -> None:
    records = [record(["x", "y"]), record(["x", "y"]), record(["y", "x"]), record(["z"]), record(["z"]),
               record(["w"])]
    for seed in range(20):
        split = split_records(records, 0.5, seed=seed)
        train = [records[i] for i in split.train]
        test = [records[i] for i in split.test]
        assert not overlap(train, test, "sequence")
        assert sorted(split.train + split.test) == list(range(len(records)))
        assert len(split.test) <= split.target == 3
    # order matters: x,y and y,x are different sequences
    assert tool_sequence(records[0]) != tool_sequence(records[2])


def test_env_rule_holds_out_connected_environments() -> None:
    records = [record(["p"], "a"), record(["q"], "b"), {"id": "ab", "chains": [{"steps": [
        {"tool": "p", "env": "a"}, {"tool": "r", "env": "c"}]}]}, record(["s"], "d"), record(["t"], "d")]
    for seed in range(10):
        split = split_records(records, 0.4, by="env", seed=seed)
        train = [records[i] for i in split.train]
        test = [records[i] for i in split.test]
        assert not overlap(train, test, "env")
    # a and c are linked by the third record: one group; b and d are two more
    assert split_records(records, 0.4, by="env").groups == 3


def test_split_file_holds_out_and_is_deterministic(dataset: Path, tmp_path: Path) -> None:
    first = split_file(dataset, tmp_path / "one", 0.3)
    split_file(dataset, tmp_path / "two", 0.3)
    for name in ("train.jsonl", "test.jsonl", "split.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    train, test = lines(tmp_path / "one" / "train.jsonl"), lines(tmp_path / "one" / "test.jsonl")
    assert test and train and len(train) + len(test) == len(lines(dataset))
    assert not overlap(train, test, "sequence")
    assert first["samples"] == {"train": len(train), "test": len(test)}
    assert len(test) <= first["target_test_samples"] == round(0.3 * 30)
    # lines are copied byte for byte, in file order
    original = dataset.read_bytes().splitlines(keepends=True)
    assert (tmp_path / "one" / "test.jsonl").read_bytes() == b"".join(
        line for line in original if orjson.loads(line)["id"] in set(first["ids"]["test"]))
    other = split_file(dataset, tmp_path / "three", 0.3, seed=7)
    assert other["ids"] != first["ids"]


def test_split_by_env(tmp_path: Path) -> None:
    parts = []
    for env in ("petstore", "museum", "tictactoe"):
        path = tmp_path / f"{env}.jsonl"
        generate_dataset(GenerateSettings(envs=[env], n=4, seed=0, output=str(path)))
        parts.append(path.read_bytes())
    dataset = tmp_path / "three-envs.jsonl"
    dataset.write_bytes(b"".join(parts))
    manifest = split_file(dataset, tmp_path / "env", 0.4, by="env")
    train, test = lines(tmp_path / "env" / "train.jsonl"), lines(tmp_path / "env" / "test.jsonl")
    assert not overlap(train, test, "env")
    assert manifest["rule"] == "env" and manifest["groups"]["total"] == 3
    assert manifest["samples"]["test"] == 4  # one environment of three: the most that fits under 5


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ToolgradError, match="no such dataset file"):
        split_file(tmp_path / "missing.jsonl", tmp_path / "out", 0.2)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')  # a JSON object that is not a dataset record
    with pytest.raises(ToolgradError, match="not a dataset record"):
        split_file(bad, tmp_path / "out", 0.2)
    with pytest.raises(ToolgradError, match="between 0 and 1"):
        split_records([record(["x"])], 1.5)


@pytest.mark.parametrize(("member", "value"), [
    ("provenance", {"environments": 1.5}), ("provenance", 3), ("provenance", {"environments": ["crm"]}),
    ("chains", [{"steps": [{"tool": ["x"], "env": "crm"}]}]), ("chains", [{"steps": 7}]), ("id", 12),
])
def test_a_line_whose_members_have_other_types_is_named_not_a_traceback(
        tmp_path: Path, member: str, value: Any) -> None:
    # bad input: a line whose provenance, steps or id has a type split cannot read (found by a
    # structural fuzz: a TypeError from the first pass)
    line = {"id": "x", "chains": [{"steps": [{"tool": "crm__a", "env": "crm"}]}],
            "provenance": {"environments": {"crm": {}}}, member: value}
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(orjson.dumps(line) + b"\n")
    with pytest.raises(ToolgradError, match=r"bad.jsonl:1: not a dataset record \("):
        split_file(bad, tmp_path / "out", 0.2)
    assert not (tmp_path / "out").exists()


def test_cli_split(dataset: Path, tmp_path: Path) -> None:
    from benchmarks.cli.app import app

    result = CliRunner().invoke(app, ["split", str(dataset), "--test", "0.2", "-o", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "held out" in result.output and (tmp_path / "s" / "test.jsonl").exists()
    result = CliRunner().invoke(app, ["split", str(dataset), "--by", "colour", "-o", str(tmp_path / "t")])
    assert result.exit_code == 2 and "--by must be one of" in result.output

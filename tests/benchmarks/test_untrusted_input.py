"""``certify`` and ``eval`` given input that is no dataset: one clear error, exit 2, nothing read
whole; a dataset naming a path as its environment: never opened (each test names its bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.certify.certificate import certify_file
from benchmarks.certify.replay import MAX_LINE_BYTES, DatasetError, read_lines
from benchmarks.cli.app import app


@pytest.mark.parametrize("command", [["certify"], ["eval", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"]])
def test_a_device_is_refused_with_exit_2(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "/dev/zero"])  # bad input: an endless device
    assert result.exit_code == 2, result.output
    assert "not a regular file" in result.output and "Traceback" not in result.output


def test_a_file_that_is_no_dataset_is_refused_after_its_first_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 1000 + b"\n" + b"x" * 3_000_000)  # bad input: binary, then a long tail
    with pytest.raises(DatasetError, match=r"junk\.bin:1: not a dataset"):
        read_lines(junk)
    result = CliRunner().invoke(app, ["certify", str(junk)])
    assert result.exit_code == 2 and "not a dataset" in result.output


def test_a_first_line_beyond_the_bound_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("benchmarks.certify.replay.MAX_LINE_BYTES", 1024)
    one_line = tmp_path / "one-line.jsonl"
    one_line.write_text('{"a": "' + "y" * 5000 + '"}\n')  # bad input: a first line over the bound
    with pytest.raises(DatasetError, match="no sample within the first 1,024 bytes"):
        read_lines(one_line)
    assert MAX_LINE_BYTES == 64 * 1024 * 1024


def test_blank_lines_before_the_first_sample_are_fine(dataset_path: Path, tmp_path: Path) -> None:
    padded = tmp_path / "padded.jsonl"
    padded.write_text("\n\n" + dataset_path.read_text())
    lines = read_lines(padded)
    assert lines[0].line == 3 and len(lines) == len(read_lines(dataset_path))


def test_an_environment_named_by_a_path_is_never_opened(dataset_path: Path, tmp_path: Path) -> None:
    records = [json.loads(line) for line in dataset_path.read_text().splitlines() if line.strip()]
    envs = records[0]["provenance"]["environments"]
    envs["/dev/zero"] = dict(envs["petstore"], env="/dev/zero")  # bad input: a path as an environment name
    path = tmp_path / "path-env.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    certificate = certify_file(path)
    bad = [s for s in certificate.samples if not s.ok]
    assert [s.line for s in bad] == [1] and bad[0].verdict == "environment_missing"
    assert "not a plain name" in bad[0].first_divergence["got"] and "--env" in bad[0].first_divergence["got"]

"""Lean lines (schema 3 and 4): the trace sidecar and the tool table beside the data, consistent after
a kill between the two commits, repaired on resume; older lines still read."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from toolgrad.dataset import files
from toolgrad.dataset.files import LineFiles
from toolgrad.dataset.lines import read_samples, read_tool_table, tool_specs, tools_path, traces_path
from toolgrad.dataset.runner import generate_dataset
from toolgrad.records import Sample
from toolgrad.settings import GenerateSettings, ToolgradError


def settings(path: Path, n: int = 4) -> GenerateSettings:
    return GenerateSettings.model_validate({"envs": ["petstore", "museum"], "n": n, "seed": 0, "output": str(path)})


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("whole") / "w.jsonl"
    generate_dataset(settings(path))
    return path


def test_each_line_hashes_its_trace_line_and_names_tools_of_the_table(whole: Path) -> None:
    data, traces = lines(whole), lines(traces_path(whole))
    assert len(data) == len(traces) == 4
    table = read_tool_table(whole)
    for line, trace in zip(data, traces, strict=True):
        record = orjson.loads(line)
        assert record["schema_version"] == "4" and "trace" not in record
        # schema 4: the fingerprints of the environments the chains call, not of every one of the run
        called = {step["env"] for chain in record["chains"] for step in chain["steps"]}
        assert set(record["provenance"]["environments"]) == called
        assert record["provenance"]["generator"]["environments"] == ["museum", "petstore"]
        assert record["trace_sha256"] == hashlib.sha256(trace.removesuffix(b"\n")).hexdigest()
        assert orjson.loads(trace)["seed"] == record["seed"]
        assert all(isinstance(name, str) and name in table for name in record["candidate_tools"])
    sample = next(read_samples(whole))
    assert [spec["function"]["name"] for spec in tool_specs(sample, table)] == sample.candidate_tools
    with_traces = next(read_samples(whole, traces=True))
    assert with_traces.trace is not None and with_traces.trace.iterations


def test_a_kill_between_the_two_commits_is_repaired_on_resume(tmp_path: Path, whole: Path) -> None:
    """The sidecar commits first: a kill after its commit and before the data's leaves trace
    lines beyond the data's. Resume cuts them and writes both again: the same bytes."""
    path = tmp_path / "k.jsonl"
    path.write_bytes(b"".join(lines(whole)[:2]))  # the data's commit of samples 3 and 4 never happened
    traces_path(path).write_bytes(traces_path(whole).read_bytes())
    notices: list[str] = []
    generate_dataset(settings(path), events=lambda e: notices.append(str(e)))
    assert path.read_bytes() == whole.read_bytes()
    assert traces_path(path).read_bytes() == traces_path(whole).read_bytes()
    assert tools_path(path).read_bytes() == tools_path(whole).read_bytes()
    assert any("removed 2 trace line(s)" in n for n in notices)


def test_traces_left_without_their_data_are_cut_not_appended_to(tmp_path: Path, whole: Path) -> None:
    """A kill before the data's first commit (or a removed data file) leaves the sidecar alone:
    the run starts it again rather than appending after trace lines no sample names."""
    path = tmp_path / "alone.jsonl"
    traces_path(path).write_bytes(traces_path(whole).read_bytes())  # bad input: traces, no data file
    generate_dataset(settings(path))
    assert path.read_bytes() == whole.read_bytes()
    assert traces_path(path).read_bytes() == traces_path(whole).read_bytes()


def test_a_partial_trace_line_is_cut_on_resume(tmp_path: Path, whole: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"".join(lines(whole)[:3]))
    traces_path(path).write_bytes(b"".join(lines(traces_path(whole))[:3]) + lines(traces_path(whole))[3][:100])
    generate_dataset(settings(path))
    assert traces_path(path).read_bytes() == traces_path(whole).read_bytes()


def test_resume_refuses_data_whose_traces_are_missing_or_not_theirs(tmp_path: Path, whole: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"".join(lines(whole)[:2]))  # no sidecar: not what a kill leaves
    with pytest.raises(ToolgradError, match=r"traces .* are missing"):
        generate_dataset(settings(path))
    other = lines(traces_path(whole))
    traces_path(path).write_bytes(other[1] + other[0])  # the two traces swapped
    with pytest.raises(ToolgradError, match=r"m\.traces\.jsonl:1: not the trace of"):
        generate_dataset(settings(path))
    traces_path(path).write_bytes(other[0])  # one trace for two samples
    with pytest.raises(ToolgradError, match="holds 1 trace"):
        generate_dataset(settings(path))


def test_line_files_commit_the_sidecar_before_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renamed: list[str] = []
    real = files.os.replace

    def spy(src: Any, dst: Any) -> None:
        renamed.append(Path(dst).name)
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", spy)
    writer = LineFiles([tmp_path / "d.traces.jsonl", tmp_path / "d.jsonl"])
    for i in range(3):
        writer.append([b"t%d\n" % i, b"d%d\n" % i])  # an empty file is due at once: every line commits
    writer.close()
    assert renamed == ["d.traces.jsonl", "d.jsonl"] * 3
    assert (tmp_path / "d.jsonl").read_bytes() == b"d0\nd1\nd2\n"
    with pytest.raises(ValueError, match="takes 2 lines"):
        LineFiles([tmp_path / "a", tmp_path / "b"]).append([b"x\n"])


def as_schema_2(record: dict[str, Any], trace_line: bytes, table: dict[str, Any]) -> dict[str, Any]:
    """A schema-3 record as toolgrad wrote it at schema 2: trace and tool specs inline, id re-hashed."""
    from benchmarks.perf.lines import schema_2_line

    return dict(orjson.loads(schema_2_line(record, trace_line, table)))


def test_schema_2_lines_are_read_with_their_inline_trace_and_tool_specs(whole: Path) -> None:
    table = read_tool_table(whole)
    record = as_schema_2(orjson.loads(lines(whole)[0]), lines(traces_path(whole))[0], table)
    sample = Sample.model_validate(record)
    assert sample.trace is not None and sample.trace_sha256 == ""
    assert sample.candidate_tools == [spec["function"]["name"] for spec in record["candidate_tools"]]
    assert tool_specs(sample, {}) == record["candidate_tools"]  # inline: no table needed


def test_resume_compares_the_fingerprints_every_existing_line_names(tmp_path: Path) -> None:
    """A line names only the environments it calls: resuming checks the fingerprints of all the
    lines, not only the first one's."""
    five = tmp_path / "five.jsonl"
    generate_dataset(settings(five, n=5))
    envs = [set(orjson.loads(line)["provenance"]["environments"]) for line in lines(five)]
    assert envs[0] != set().union(*envs)  # the first line alone does not name every environment
    late = next(name for name in set().union(*envs) if name not in envs[0])
    path = tmp_path / "f.jsonl"
    changed = []
    for line in lines(five):  # bad input: a later line's fingerprint of one environment changed
        record = orjson.loads(line)
        if late in record["provenance"]["environments"]:
            record["provenance"]["environments"][late]["spec_sha256"] = "0" * 64
        changed.append(orjson.dumps(record) + b"\n")
    path.write_bytes(b"".join(changed))
    traces_path(path).write_bytes(traces_path(five).read_bytes())
    with pytest.raises(ToolgradError, match=r"other settings \(environments differ\)"):
        generate_dataset(settings(path, n=6))


def test_schema_3_lines_with_every_fingerprint_of_the_run_are_read(whole: Path) -> None:
    from benchmarks.perf.lines import schema_3_record

    everything = {}
    for line in lines(whole):
        everything.update(orjson.loads(line)["provenance"]["environments"])
    sample = Sample.model_validate(schema_3_record(orjson.loads(lines(whole)[0]), everything))
    assert sample.schema_version == "3" and set(sample.provenance.environments) == set(everything)

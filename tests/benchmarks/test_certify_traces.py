"""Certification of lean lines: the traces sidecar checked by hash, a missing one said so, older
(schema 2) datasets still certified, the dataset read a line at a time; split and export keep
working on schema 3."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from benchmarks.certify import replay
from benchmarks.certify.certificate import certificate_bytes, certify_file
from benchmarks.cli.app import app
from simulator.canonical import pretty_json
from tests.toolgrad.test_lean_lines import as_schema_2
from toolgrad.dataset.lines import read_samples, read_tool_table, tools_path, traces_path
from toolgrad.exports.openai import export_dataset
from toolgrad.exports.split import split_file
from toolgrad.settings import ExportSettings


def copy_dataset(source: Path, target: Path, *, sidecars: bool = True) -> Path:
    shutil.copyfile(source, target)
    if sidecars:
        shutil.copyfile(traces_path(source), traces_path(target))
        shutil.copyfile(tools_path(source), tools_path(target))
    return target


def test_a_tampered_trace_line_fails_its_sample_by_name(dataset_path: Path, tmp_path: Path) -> None:
    path = copy_dataset(dataset_path, tmp_path / "d.jsonl")
    traces = traces_path(path).read_bytes().splitlines(keepends=True)
    record = orjson.loads(traces[2])
    record["trace"]["iterations"][0]["batch"] = ["a tool the generator never drew"]
    traces[2] = orjson.dumps(record) + b"\n"
    traces_path(path).write_bytes(b"".join(traces))
    cert = certify_file(path)
    assert not cert.ok and cert.traces == "checked"
    assert [(s.line, s.checks["trace"].reason) for s in cert.samples if not s.ok] == [(3, "trace_mismatch")]
    assert all(s.checks["replay"].ok for s in cert.samples), "the chains themselves still replay"
    result = CliRunner().invoke(app, ["certify", str(path)])
    assert result.exit_code == 1 and "trace" in result.output and "trace_mismatch" in result.output


def test_a_missing_sidecar_still_replays_and_says_traces_were_not_checked(dataset_path: Path,
                                                                          tmp_path: Path) -> None:
    path = copy_dataset(dataset_path, tmp_path / "bare.jsonl", sidecars=False)
    cert = certify_file(path)
    assert cert.ok and all(s.verdict == "pass" and s.replayed == s.steps for s in cert.samples)
    assert cert.traces.startswith("not checked") and cert.traces_sha256 is None
    assert "trace" not in cert.checks
    result = CliRunner().invoke(app, ["certify", str(path)])
    assert result.exit_code == 0 and "traces: not checked" in result.output


def test_the_certificate_records_the_sidecar_sha256(dataset_path: Path) -> None:
    cert = certify_file(dataset_path)
    assert cert.schema_version == "3"
    assert cert.traces_sha256 == hashlib.sha256(traces_path(dataset_path).read_bytes()).hexdigest()
    assert cert.dataset_sha256 == hashlib.sha256(dataset_path.read_bytes()).hexdigest()


def test_the_sidecar_is_read_once_and_a_change_between_reads_is_an_error(dataset_path: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.certify.certificate import iter_certify
    from benchmarks.certify.sandboxes import SandboxProvider
    from benchmarks.certify.traces import TracesSidecar

    path = copy_dataset(dataset_path, tmp_path / "d.jsonl")
    original = hashlib.sha256(traces_path(path).read_bytes()).hexdigest()
    opened: list[Path] = []
    real_lines = TracesSidecar.lines

    def counting(self: TracesSidecar) -> Iterator[bytes]:
        opened.append(self.path)
        return real_lines(self)

    monkeypatch.setattr(TracesSidecar, "lines", counting)
    dataset = replay.read_dataset(path)
    with SandboxProvider() as provider:
        checked = list(iter_certify(dataset, provider))
    assert all(c.verdict.checks["trace"].ok for c in checked)
    # the digest the certificate records is the one of the read the checks used: no second read
    assert dataset.traces_sha256 == original and opened == [traces_path(path)]
    # bad input: the sidecar rewritten while the dataset is certified again
    traces_path(path).write_bytes(traces_path(path).read_bytes() + b"{}\n")
    with SandboxProvider() as provider, pytest.raises(replay.DatasetError, match="changed"):
        list(iter_certify(dataset, provider))


def test_a_schema_2_dataset_still_certifies(dataset_path: Path, tmp_path: Path) -> None:
    table = read_tool_table(dataset_path)
    traces = traces_path(dataset_path).read_bytes().splitlines()
    old = [as_schema_2(orjson.loads(line), trace, table)
           for line, trace in zip(dataset_path.read_bytes().splitlines(), traces, strict=True)]
    path = tmp_path / "v2.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in old))
    cert = certify_file(path)
    assert cert.ok and cert.sample_count == len(old) and cert.traces == "inline"
    assert [s.id for s in cert.samples] == [r["id"] for r in old]  # the ids the schema-2 lines hold
    assert "trace" not in cert.checks


def test_certify_reads_the_dataset_a_line_at_a_time(dataset_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader may never run more than one line ahead of the samples already certified: a
    reader that materialised the file would trip the guard on its second line."""
    done = 0
    real = replay.iter_lines

    def guarded(path: Path, **kw: Any) -> Iterator[replay.DatasetLine]:
        for read, line in enumerate(real(path, **kw)):
            assert read - done <= 1, f"line {line.line} read while only {done} samples were certified"
            yield line

    def count(_: Any) -> None:
        nonlocal done
        done += 1

    monkeypatch.setattr(replay, "iter_lines", guarded)
    cert = certify_file(dataset_path, on_sample=count)
    assert cert.ok and done == cert.sample_count == 8


def test_a_file_changed_between_the_two_passes_is_refused(dataset_path: Path, tmp_path: Path) -> None:
    path = copy_dataset(dataset_path, tmp_path / "c.jsonl")
    dataset = replay.read_dataset(path)
    path.write_bytes(path.read_bytes()[:-1] + b" \n")  # the same lines, one byte more
    with pytest.raises(replay.DatasetError, match="changed while it was being read"):
        for _ in dataset.samples():  # the second pass reads every line, then compares the sha256
            pass


def test_split_gives_each_part_its_traces_and_tools_and_both_certify(dataset_path: Path, tmp_path: Path) -> None:
    manifest = split_file(dataset_path, tmp_path / "split", 0.25, seed=1)
    assert sum(manifest["samples"].values()) == 8
    for part in ("train", "test"):
        path = tmp_path / "split" / f"{part}.jsonl"
        assert len(traces_path(path).read_bytes().splitlines()) == manifest["samples"][part]
        assert tools_path(path).read_bytes() == tools_path(dataset_path).read_bytes()
        cert = certify_file(path)
        assert cert.ok and cert.traces == "checked" and cert.sample_count == manifest["samples"][part]


@pytest.mark.parametrize("fmt", ["openai", "calls"])
def test_exports_of_lean_lines_take_full_tool_specs_from_the_tool_table(dataset_path: Path, tmp_path: Path,
                                                                        fmt: str) -> None:
    settings = ExportSettings.model_validate({"input": str(dataset_path), "output": str(tmp_path / "o.jsonl"),
                                              "format": fmt, "distractors": 3, "negatives": 0.25, "seed": 7})
    assert export_dataset(settings) == 8
    rows = [orjson.loads(line) for line in (tmp_path / "o.jsonl").read_bytes().splitlines()]
    samples, table = list(read_samples(dataset_path)), read_tool_table(dataset_path)
    assert len(rows) == len(samples) == 8
    for row, sample in zip(rows, samples, strict=True):
        if fmt == "openai":  # the lines name their tools; the row holds each one's spec from the table
            assert row["messages"][0]["content"] == sample.query
            assert all(table[name] in row["tools"] for name in sample.candidate_tools)
            assert len(row["tools"]) == len(sample.candidate_tools) + 3
        else:
            assert row["id"] == sample.id and row["messages"][1]["content"] == sample.query
            assert '"parameters"' in row["messages"][0]["content"], "the system prompt lists full specs"
    if fmt == "calls":
        assert sum(row["negative"] for row in rows) == 2  # round(0.25 * 8)


def test_the_certificate_text_is_pretty_json_of_the_whole(dataset_path: Path, tmp_path: Path) -> None:
    """Written a sample at a time, the certificate is the same bytes as ``pretty_json`` of all of it
    (with failures, and with no sample)."""
    path = copy_dataset(dataset_path, tmp_path / "t.jsonl")
    traces_path(path).write_bytes(traces_path(path).read_bytes().replace(b'"seed":0', b'"seed":99', 1))
    cert = certify_file(path)
    assert not cert.ok  # the first sample's trace line was changed
    for each in (cert, cert.model_copy(update={"samples": []})):
        assert certificate_bytes(each) == pretty_json(each.model_dump(mode="json")).encode()
    result = CliRunner().invoke(app, ["certify", str(path), "-o", str(tmp_path / "c.json")])
    assert result.exit_code == 1 and (tmp_path / "c.json").read_bytes() == certificate_bytes(cert)

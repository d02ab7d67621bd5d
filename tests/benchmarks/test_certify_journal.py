"""`toolgrad certify` streams each sample's check to a journal beside the certificate and writes the
certificate from it: the same bytes as the in-memory certificate, and `--resume` continues a
killed run (a torn last line, another run's journal and changed environments are not trusted)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.certify.certificate import certificate_bytes, certify_file, iter_certify, with_unique
from benchmarks.certify.journal import VerdictJournal, journal_key, journal_path
from benchmarks.certify.replay import read_dataset, recorded_env_refs
from benchmarks.certify.sandboxes import SandboxProvider
from benchmarks.cli.app import app


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def killed_run(data: Path, target: Path, checked: int, tail: bytes = b"") -> Path:
    """The journal a run killed after ``checked`` samples leaves (``tail``: a torn line after them)."""
    dataset = read_dataset(data)
    refs = recorded_env_refs(dataset)
    journal = VerdictJournal(journal_path(target), journal_key(dataset.sha256, refs))
    journal.open()
    with SandboxProvider("inprocess", refs) as provider:
        for index, (item, verdict) in enumerate(with_unique(iter_certify(dataset, provider))):
            if index == checked:
                break
            journal.add(item, verdict)
    assert journal._file is not None
    journal._file.write(tail)
    journal._file.close()  # as a kill leaves it: not removed
    return journal.path


def certify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["certify", *args])
    return result.exit_code, result.output


def test_the_streamed_certificate_is_the_in_memory_one_with_failures_and_duplicates(
        dataset_path: Path, tmp_path: Path) -> None:
    # bad input: line 3 repeats line 1 (unique fails on line 3 only); line 2's first status was changed
    text = lines(dataset_path)
    changed = json.loads(text[1])
    changed["chains"][0]["steps"][0]["status"] = 299
    data = tmp_path / "data.jsonl"
    data.write_text("".join([text[0], json.dumps(changed) + "\n", text[0], *text[3:]]))
    target = tmp_path / "c.json"
    code, output = certify(str(data), "-o", str(target))
    assert code == 1, output
    expected = certify_file(data)
    assert [s.line for s in expected.samples if not s.ok] == [2, 3]
    assert target.read_bytes() == certificate_bytes(expected)
    assert not journal_path(target).exists(), "the journal goes once the certificate is written"
    assert "line 2 (seed 1" in output and "line 3 (seed 0" in output


def test_resume_continues_a_killed_run_past_a_torn_line(dataset_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "c.json"
    partial = killed_run(dataset_path, target, 3, tail=b'{"verdict": {"line": 4, "id"')
    code, output = certify(str(dataset_path), "-o", str(target), "--resume")
    assert code == 0, output
    assert "resumed: 3 sample(s)" in output
    assert target.read_bytes() == certificate_bytes(certify_file(dataset_path))
    assert not partial.exists() and not list(tmp_path.glob("*.next")), "neither journal is left"


def test_without_resume_a_leftover_journal_is_replaced_not_trusted(dataset_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "c.json"
    partial = killed_run(dataset_path, target, 4)
    # a forged verdict in it: the plain command must not read it
    forged = partial.read_text().replace('"ok":true', '"ok":false', 1)
    assert forged != partial.read_text()
    partial.write_text(forged)
    code, output = certify(str(dataset_path), "-o", str(target))
    assert code == 0, output
    assert "replacing the journal" in output
    assert target.read_bytes() == certificate_bytes(certify_file(dataset_path))


def test_another_runs_journal_is_not_resumed(dataset_path: Path, tmp_path: Path) -> None:
    # bad input: the journal of a dataset of 5 lines, offered to the same command on all 8
    target = tmp_path / "c.json"
    short = tmp_path / "short.jsonl"
    short.write_text("".join(lines(dataset_path)[:5]))
    killed_run(short, target, 5)
    code, output = certify(str(dataset_path), "-o", str(target), "--resume")
    assert code == 0, output
    assert "nothing to resume" in output
    assert target.read_bytes() == certificate_bytes(certify_file(dataset_path))


def test_a_journal_checked_against_other_environments_is_not_resumed(dataset_path: Path, tmp_path: Path) -> None:
    # bad input: the journal says its samples were checked against another petstore spec
    target = tmp_path / "c.json"
    partial = killed_run(dataset_path, target, 4)
    head, *rest = partial.read_text().splitlines(keepends=True)
    records = [json.loads(line) for line in rest]
    for record in records:
        record["fingerprints"] = [text.replace('"spec_sha256":"', '"spec_sha256":"0') for text in record["fingerprints"]]
    partial.write_text(head + "".join(json.dumps(r) + "\n" for r in records))
    code, output = certify(str(dataset_path), "-o", str(target), "--resume")
    assert code == 0, output
    assert "not resumed: environment" in output
    assert target.read_bytes() == certificate_bytes(certify_file(dataset_path))


@pytest.mark.timeout(180)
def test_a_certify_process_killed_mid_run_resumes_to_the_same_bytes(dataset_path: Path, tmp_path: Path) -> None:
    # eight copies of the dataset's lines, each with a seed of its own: long enough to kill mid-run
    records = [json.loads(line) for line in lines(dataset_path)]
    data = tmp_path / "big.jsonl"
    with data.open("w") as fh:
        for copy in range(8):
            for record in records:
                fh.write(json.dumps({**record, "seed": record["seed"] + 1000 * copy}) + "\n")
    traces = dataset_path.with_name("data.traces.jsonl").read_text()
    data.with_name("big.traces.jsonl").write_text(traces * 8)
    target = tmp_path / "c.json"
    partial = journal_path(target)
    child = subprocess.Popen([sys.executable, "-m", "benchmarks.cli.app", "certify", str(data), "-w", "1",
                              "-o", str(target)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if partial.exists() and partial.read_bytes().count(b"\n") > 10:
            break
        time.sleep(0.01)
    assert child.poll() is None, "the run ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = partial.read_bytes().count(b"\n") - 1
    assert 10 <= done < len(records) * 8 and not target.exists()
    code, output = certify(str(data), "-o", str(target), "--resume")
    assert f"resumed: {done} sample(s)" in output
    # the copies repeat ids (unique fails from line 9 on): the bytes are what matter
    assert code == 1 and target.read_bytes() == certificate_bytes(certify_file(data))
    assert not partial.exists()


def test_an_output_folder_that_cannot_be_written_is_an_error_before_any_work(
        dataset_path: Path, tmp_path: Path) -> None:
    # bad input: -o names a file in a folder that does not exist
    code, output = certify(str(dataset_path), "-o", str(tmp_path / "missing" / "c.json"))
    assert code == 2 and "cannot write the certificate there" in output and "Traceback" not in output


def test_the_journal_key_changes_with_any_source_file_of_the_checking_code(tmp_path: Path) -> None:
    import shutil

    import simulator
    from benchmarks.certify.journal import _sources_sha256

    package = Path(simulator.__file__).resolve().parent
    copy = tmp_path / "simulator"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "_envs"))
    assert _sources_sha256(copy) == _sources_sha256(package)
    walk = copy / "datagen" / "walk.py"  # far from simulator.environments, which the fingerprint covers
    walk.write_text(walk.read_text() + "\n# a change\n")
    assert _sources_sha256(copy) != _sources_sha256(package)


def test_a_journal_another_run_replaced_meanwhile_is_an_error_not_a_certificate(
        dataset_path: Path, tmp_path: Path) -> None:
    from benchmarks.certify.errors import BenchmarkError

    target = tmp_path / "c.json"
    killed_run(dataset_path, target, 3)
    mine = VerdictJournal(journal_path(target), journal_key(read_dataset(dataset_path).sha256,
                                                            recorded_env_refs(read_dataset(dataset_path))))
    assert len(list(mine.items(3))) == 3
    # bad input: a second run, of other data, writing the same certificate, replaced the journal
    theirs = VerdictJournal(journal_path(target), "another run's key")
    theirs.open()
    theirs.close()
    with pytest.raises(BenchmarkError, match="holds 0 of this run's 3 samples"):
        list(mine.items(3))


@pytest.mark.parametrize("name", ["adafruit", "baskets", "crm"])
def test_the_fingerprint_resume_compares_is_the_sandboxs_without_building_one(name: str) -> None:
    with SandboxProvider("inprocess") as provider:
        cheap = provider.fingerprint((name, 7))
        assert provider._sandboxes == {}  # the driver of a resumed run compiles no simulator
        provider.prepare([(name, 7)])
        assert provider._sandboxes[(name, 7)].fingerprint() == cheap
        assert provider.fingerprint((name, 7)) == cheap
    assert cheap["env"] == name and cheap["seed"] == 7 and cheap["auth"] == "off"

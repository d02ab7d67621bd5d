"""benchmarks.perf.certify_command: what `toolgrad bench certify --whole-command` runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.perf import certify_command


@pytest.mark.parametrize(("workers", "expected"), [(None, []), (1, ["--workers", "1"]), (2, ["--workers", "2"])])
def test_certify_once_passes_workers_to_certify_only_when_given(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int | None, expected: list[str]) -> None:
    seen: list[list[str]] = []

    def timed(code: Any, args: list[str], cwd: Path) -> tuple[float, float]:
        seen.append(list(args))
        (cwd / f"certificate-{code.label}.json").write_bytes(b'{"passed": 3}')
        return 1.0, 1.0

    monkeypatch.setattr(certify_command, "_timed", timed)
    code = certify_command.Code("this checkout", tmp_path)
    certify_command.certify_once(code, tmp_path / "data.jsonl", tmp_path, workers)
    # no --workers: certify's own default; a number: passed through as certify's flag
    assert seen == [["--quiet", "certify", str(tmp_path / "data.jsonl"), "-o",
                     str(tmp_path / "certificate-this checkout.json"), *expected]]
    assert code.walls == [1.0] and len(code.certificates) == 1 and code.passed == {3}


def test_the_report_says_when_the_two_codes_certify_different_samples(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A baseline whose simulator differs refuses the dataset's fingerprints at once: its fast
    runs are no speed figure, and the report says so."""
    ours = certify_command.Code("this checkout", tmp_path, [2.0], [2.0], [0.3], {"a"}, {1000})
    theirs = certify_command.Code("e3a0817", tmp_path, [0.5], [0.5], [0.3], {"b"}, {0})
    certify_command.report([ours, theirs], 4499, 1000, "DATA", 1)
    out = capsys.readouterr().out
    assert "samples certified" in out and "1000" in out
    assert "certify different samples, so their times do not compare" in out
    assert "certificate bytes: DIFFER" in out


ORPHAN_BURN = """
import os, sys, time
if os.fork() == 0:  # the grandchild: outlives its parent, as certify's fork server and workers do
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    os._exit(0)
os._exit(0)  # the child exits at once, without waiting for it
"""

MEASURE = """
import subprocess, sys
from benchmarks.perf.certify_command import _children_cpu, adopt_orphans, reap_orphans
adopted = adopt_orphans() if sys.argv[1] == "adopt" else False
before = _children_cpu()
subprocess.run([sys.executable, "-c", sys.argv[2]], check=True)
reap_orphans(timeout=5.0)
print(adopted, _children_cpu() - before)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_the_cpu_of_a_commands_orphaned_helpers_is_counted_once_adopted() -> None:
    """``certify --workers N`` never waits for its fork server, whose children its workers are:
    their CPU reached no CPU column. Adopted (Linux's child subreaper), it does."""
    root = Path(__file__).resolve().parents[2]
    runs = {}
    for mode in ("adopt", "plain"):
        out = subprocess.run([sys.executable, "-c", MEASURE, mode, ORPHAN_BURN], cwd=root, check=True,
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)}).stdout
        adopted, cpu = out.split()
        runs[mode] = (adopted == "True", float(cpu))
    if not runs["adopt"][0]:
        pytest.skip("no PR_SET_CHILD_SUBREAPER here (not Linux)")
    assert runs["adopt"][1] >= 0.25, runs  # the grandchild's 0.3 s
    assert runs["plain"][1] < 0.25, runs  # never counted without adoption: what the column showed before

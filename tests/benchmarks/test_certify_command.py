"""benchmarks.perf.certify_command: what `toolgrad bench certify --whole-command` runs."""

from __future__ import annotations

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

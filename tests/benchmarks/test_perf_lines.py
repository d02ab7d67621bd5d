"""`toolgrad bench lines` measures certify in a child process: what it reports when certify fails."""

from __future__ import annotations

from pathlib import Path

from benchmarks.perf.lines import certify_child


def test_certify_child_reports_a_refused_dataset(tmp_path: Path) -> None:
    """Bad input: a dataset whose only line is not JSON. certify exits 2; the benchmark returns
    its exit code and the end of what it wrote to stderr, and measured the child all the same."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"not json\n")
    result = certify_child(path)
    assert result["exit"] == 2
    assert "bad.jsonl:1: not a dataset" in result["error"]
    assert "samples" not in result  # no certificate was written
    assert result["driver_rss_mib"] is None or result["driver_rss_mib"] > 0
    assert result["bytes"] == len(b"not json\n")

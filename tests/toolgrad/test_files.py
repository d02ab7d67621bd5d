"""Output files a kill at any moment leaves valid: LineFile commits, atomic writes, kill -9
while lines longer than a page are being written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from toolgrad.dataset import files
from toolgrad.dataset.files import (
    LineFile,
    LineFiles,
    files_atomic,
    remove_stale_temporaries,
    write_bytes_atomic,
    write_lines_atomic,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def line(i: int, size: int = 100) -> bytes:
    return orjson.dumps({"i": i, "pad": "x" * size}) + b"\n"


def test_small_files_commit_every_line_and_large_ones_by_ratio_or_time(tmp_path: Path) -> None:
    path, clock = tmp_path / "d.jsonl", Clock()
    out = LineFiles([path], clock=clock)  # one file, grown as the generator grows it
    file = out.files[0]
    out.append([line(0)])
    assert path.read_bytes() == line(0)  # an empty file: the first line commits at once
    for i in range(1, 40):
        out.append([line(i)])
    visible = path.read_bytes()
    assert visible.endswith(b"\n") and len(visible.splitlines()) < 40  # later lines wait for the ratio
    assert file.pending and file.pending_bytes * files.COPY_RATIO < file.size
    clock.now += files.COMMIT_SECONDS
    out.append([line(40)])
    assert not file.pending and len(path.read_bytes().splitlines()) == 41  # the time bound commits
    out.append([line(41)])
    out.close()
    assert path.read_bytes() == b"".join(line(i) for i in range(42))
    assert not list(tmp_path.glob(".*.tmp"))


def test_copying_costs_at_most_copy_ratio_bytes_per_byte_written(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    out = LineFiles([path], clock=Clock())  # one file, grown as the generator grows it
    file = out.files[0]
    copied = 0
    for i in range(2000):
        before = file.commits
        size = file.size
        out.append([line(i, 300)])
        copied += size if file.commits > before else 0
    out.close()
    assert copied <= files.COPY_RATIO * path.stat().st_size
    assert file.commits < 2000 / 10


def test_the_time_rule_waits_longer_when_a_commit_is_slow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit copies the whole file: when one takes 0.2 s (a large file), committing every
    second would spend a fifth of the run copying, so the next waits COPY_SHARE times that."""
    path, clock = tmp_path / "d.jsonl", Clock()
    copy = files.shutil.copyfile

    def slow_copy(src: Path, dst: Path) -> object:
        clock.now += 0.2
        return copy(src, dst)

    monkeypatch.setattr(files.shutil, "copyfile", slow_copy)
    writer = LineFiles([path], clock=clock)
    (out,) = writer.files
    writer.append([line(0, 5000)])
    writer.append([line(1, 5000)])  # copies the first line: this commit takes 0.2 s
    assert out.last_cost == pytest.approx(0.2) and not out.pending
    writer.append([line(2)])
    clock.now += files.COMMIT_SECONDS
    writer.append([line(3)])
    assert out.pending  # 1 s after a 0.2 s commit: not yet
    clock.now += files.COPY_SHARE * 0.2 - files.COMMIT_SECONDS
    writer.append([line(4)])
    assert not out.pending and path.read_bytes() == b"".join(line(i, 5000) for i in range(2)) + b"".join(
        line(i) for i in range(2, 5))
    writer.close()


def test_resume_appends_to_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(line(0))
    out = LineFiles([path])  # one file, grown as the generator grows it
    out.append([line(1)])
    out.close()
    assert path.read_bytes() == line(0) + line(1)


def test_close_without_lines_leaves_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    LineFile(path).close()
    assert path.read_bytes() == b""


@pytest.mark.parametrize("bad", [b'{"no": "newline"}', b'{"a": 1}\n{"b": 2}\n'])
def test_append_refuses_anything_but_one_line_and_loses_nothing(tmp_path: Path, bad: bytes) -> None:
    path = tmp_path / "d.jsonl"
    out = LineFiles([path])  # one file, grown as the generator grows it
    out.append([line(0)])
    with pytest.raises(ValueError, match="exactly one line"):
        out.append([bad])  # bad: not exactly one newline-terminated line
    out.close()
    assert path.read_bytes() == line(0)


def test_files_atomic_can_leave_a_file_nothing_was_written_to_as_it_was(tmp_path: Path) -> None:
    kept, written, empty = tmp_path / "kept", tmp_path / "written", tmp_path / "empty"
    kept.write_bytes(b"from before\n")
    with files_atomic([kept, written, empty], skip_empty=True) as (a, b, _):
        b.write(b"new\n")
        assert a is not b
    assert kept.read_bytes() == b"from before\n" and written.read_bytes() == b"new\n" and not empty.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "written"]  # no temporaries left
    with files_atomic([kept]) as (a,):
        pass
    assert kept.read_bytes() == b""  # without skip_empty, an empty file replaces it


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f".d.jsonl.{dead}.1.tmp"
    live = tmp_path / f".d.jsonl.{os.getppid()}.1.tmp"
    stale.write_bytes(b"torn")
    live.write_bytes(b"someone else's")
    assert remove_stale_temporaries(path) == [stale]
    assert not stale.exists() and live.exists()


def test_atomic_writes_leave_no_temporaries_and_keep_the_old_content_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    write_bytes_atomic(path, b"old\n")

    def rows():
        yield b"new\n"
        raise RuntimeError("the producer failed half way")

    with pytest.raises(RuntimeError):
        write_lines_atomic(path, rows())
    assert path.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


WRITER = """
import sys, orjson
from toolgrad.dataset.files import LineFiles
out = LineFiles([sys.argv[1]])
i = int(sys.argv[2])
print("ready", flush=True)  # imported and open: the kill may come at any moment from here
while True:
    out.append([orjson.dumps({"i": i, "pad": "y" * (20000 + i % 7000)}) + b"\\n"])
    i += 1
"""


def test_kill_9_at_random_moments_never_leaves_a_torn_line(tmp_path: Path) -> None:
    # lines of 20-27 KB span several pages: one write(2) of them can stop half way under SIGKILL
    path = tmp_path / "k.jsonl"
    root = Path(__file__).resolve().parents[2]
    for round_ in range(12):
        before = path.read_bytes() if path.exists() else b""
        start = len(before.splitlines())
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(start)], cwd=root,
                                stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"  # a loaded machine starts slowly
        time.sleep(0.4 + 0.037 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = path.read_bytes()
        assert data.startswith(before) and data.endswith(b"\n"), f"round {round_}: a torn file"
        assert [orjson.loads(x)["i"] for x in data.splitlines()] == list(range(len(data.splitlines())))
    assert len(path.read_bytes().splitlines()) > 12

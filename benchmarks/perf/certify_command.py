"""Whole-command certification throughput: ``toolgrad certify DATA`` as a user runs it.

    toolgrad bench certify --whole-command [--data existing.jsonl | --samples 1000 --env crm ...]
        [--repeats 3] [--baseline REV]

Each run is a fresh process (interpreter start-up, imports, sandboxes and their seeded worlds,
reading the file, replaying every step, the validity checks, writing the certificate), so its
figure is what a user waits for, unlike ``toolgrad bench certify``'s in-process timing. With
``--baseline REV`` the same dataset is certified by the code of git revision ``REV`` too (its
files, ``git archive``, on ``PYTHONPATH``; the same interpreter and installed dependencies),
alternating with this checkout's runs so that both see the same load on a shared machine, and the
two certificates' bytes are compared. Start-up is ``toolgrad --version`` (building the command
tree: every import a command pays before it starts), median of ``--startup-runs``. CPU is the
whole process tree's (driver, fork server, workers: :func:`adopt_orphans`), user + system.
"""

from __future__ import annotations

import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import orjson

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Code:
    """A version of the kit to time: its source root goes first on ``PYTHONPATH``."""

    label: str
    root: Path
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    startups: list[float] = field(default_factory=list)
    certificates: set[str] = field(default_factory=set)
    passed: set[int] = field(default_factory=set)  # samples certified, per run

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "benchmarks.cli.app", *args]

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.root)}


PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
REAP_WAIT_S = 10.0  # how long a command's orphaned helpers may take to exit after it


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def adopt_orphans() -> bool:
    """Make this process the one that reaps its descendants' orphans (Linux), so that the CPU of
    a command's fork server and of the workers it forked counts in ``RUSAGE_CHILDREN`` once
    :func:`reap_orphans` waits for them: ``certify --workers N`` never waits for its fork
    server, whose children the workers are, so without this only the driver's CPU is counted.
    False where the OS has no such call (the CPU column then counts the driver alone)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(timeout: float = REAP_WAIT_S) -> None:
    """Wait for every child this process has left (the orphans it adopted), up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # none left
        if pid == 0:
            time.sleep(0.005)


def _timed(code: Code, args: Sequence[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process tree where :func:`adopt_orphans` took
    effect) of one run; a failed run stops the benchmark with its stderr."""
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(code.command(*args), cwd=cwd, env=code.env(), capture_output=True, check=False)
    wall = time.perf_counter() - start
    reap_orphans()
    used = _children_cpu() - cpu
    if done.returncode not in (0, 1):  # 1: the certificate is below 100%, still a finished run
        sys.exit(f"{code.label}: {' '.join(args)} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return wall, used


def certify_once(code: Code, data: Path, work: Path, workers: int | None = None) -> None:
    target = work / f"certificate-{code.label}.json"
    extra = ["--workers", str(workers)] if workers is not None else []
    wall, cpu = _timed(code, ["--quiet", "certify", str(data), "-o", str(target), *extra], work)
    code.walls.append(wall)
    code.cpus.append(cpu)
    text = target.read_bytes()
    code.certificates.add(hashlib.sha256(text).hexdigest())
    code.passed.add(int(orjson.loads(text)["passed"]))


def startup_once(code: Code, work: Path) -> None:
    code.startups.append(_timed(code, ["--version"], work)[0])


def checkout(rev: str, into: Path) -> Path:
    """The files of git revision ``rev`` of this repository, unpacked under ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", rev],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        sys.exit(f"--baseline {rev}: git archive failed: {archive.stderr.decode().strip()}")
    root = into / "baseline"
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    return root


def step_count(certificate: Path) -> tuple[int, int]:
    cert = orjson.loads(certificate.read_bytes())
    return int(cert["sample_count"]), int(cert["step_count"])


def report(codes: list[Code], steps: int, samples: int, origin: str, repeats: int, workers: int | None = None,
           *, whole_tree: bool = True) -> None:
    print(f"dataset: {samples} samples, {steps} steps ({origin})")
    flag = f" --workers {workers}" if workers is not None else ""
    print(f"whole command `toolgrad certify DATA{flag}`, median of {repeats} runs each, alternating; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    header = f"{'':28}" + "".join(f"{c.label:>16}" for c in codes)
    if len(codes) == 2:
        header += f"{'ratio':>10}"
    print(header)

    def row(name: str, values: list[float], fmt: str, higher_is_better: bool) -> None:
        line = f"{name:28}" + "".join(f"{format(v, fmt):>16}" for v in values)
        if len(values) == 2 and values[0] and values[1]:
            ratio = values[0] / values[1] if higher_is_better else values[1] / values[0]
            line += f"{ratio:>9.2f}x"
        print(line)

    walls = [statistics.median(c.walls) for c in codes]
    cpus = [statistics.median(c.cpus) for c in codes]
    row("wall seconds", walls, ".2f", False)
    row("steps/s (wall)", [steps / w for w in walls], ",.0f", True)
    row("CPU s (process tree)" if whole_tree else "CPU s (driver only)", cpus, ".2f", False)
    row("steps per CPU second", [steps / c for c in cpus], ",.0f", True)
    row("start-up s (--version)", [statistics.median(c.startups) for c in codes], ".2f", False)
    print(f"{'samples certified':28}" + "".join(f"{'/'.join(map(str, sorted(c.passed))):>16}" for c in codes))
    if len(codes) == 2:
        same = codes[0].certificates == codes[1].certificates and len(codes[0].certificates) == 1
        print(f"certificate bytes: {'identical' if same else 'DIFFER'} "
              f"(sha256 {', '.join(sorted(codes[0].certificates | codes[1].certificates))[:200]})")
        if codes[0].passed != codes[1].passed:
            print("the two codes certify different samples, so their times do not compare: every environment "
                  "fingerprint holds the simulator's code digest, and a dataset made by one simulator is refused "
                  "by another; compare revisions with the same simulator code")


def run(data: Path, origin: str, *, repeats: int, startup_runs: int, baseline: str | None,
        workers: int | None = None) -> int:
    """Time both codes; ``workers`` is passed as ``certify --workers`` (None: its default)."""
    tree = adopt_orphans()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        codes = [Code("this checkout", REPO_ROOT)]
        if baseline is not None:
            codes.append(Code(baseline[:14], checkout(baseline, work)))
        for code in codes:  # warm the file cache and the interpreters' bytecode caches
            certify_once(code, data, work, workers)
            code.walls.clear()
            code.cpus.clear()
        for _ in range(repeats):
            for code in codes:
                certify_once(code, data, work, workers)
        for _ in range(startup_runs):
            for code in codes:
                startup_once(code, work)
        samples, steps = step_count(work / "certificate-this checkout.json")
    report(codes, steps, samples, origin, repeats, workers, whole_tree=tree)
    if len(codes) == 2 and codes[0].certificates != codes[1].certificates:
        return 1
    return 0

"""Generation speed with the offline policy: median samples/s over a few runs, and calls per
sample, per shipped environment (and over all of them together).

    toolgrad bench generate [--n 100] [--runs 3] [--env petstore ...]
                            [--concurrency 1] [--profile] [--workers 1,2 [--baseline REV]]

Each run writes a fresh dataset to a temporary directory; the time covers the whole
``generate_dataset`` call (toolbox start-up included). ``--profile`` adds a cProfile listing
of the top functions (cumulative and own time) of one run over all environments.
``--workers 1,2`` instead times the whole command (``toolgrad generate --workers W``, as a
user runs it: interpreter start-up and imports included) for each number of workers, the runs
interleaved so that a noisy machine slows each alike, and prints the medians side by side with
their ratio to the first; it also checks that every run wrote the same bytes (the dataset, its
trace sidecar and its tool table). With ``--baseline REV`` the code of git revision ``REV`` (its
files on ``PYTHONPATH``, as ``toolgrad bench certify --whole-command --baseline`` does) runs the
same commands, alternating with this checkout's, and each figure gets its ratio to the
baseline's (the bytes are compared per code: a record names the git revision that wrote it).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.perf.certify_command import REPO_ROOT, Code, checkout
from simulator.environments.environment import shipped_environments
from toolgrad.dataset.lines import read_samples, tools_path, traces_path
from toolgrad.dataset.runner import generate_dataset
from toolgrad.settings import GenerateSettings


def one_run(envs: list[str], n: int, seed: int, concurrency: int) -> tuple[float, int, float]:
    """(samples/s, samples written, mean calls per sample)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.jsonl"
        settings = GenerateSettings(envs=envs, n=n, seed=seed, concurrency=concurrency, output=str(out))
        start = time.perf_counter()
        summary = generate_dataset(settings)
        wall = time.perf_counter() - start
        calls = [len(s.steps()) for s in read_samples(out)]
    return summary.new_samples / wall, summary.new_samples, statistics.mean(calls) if calls else 0.0


def bench(envs: list[str], n: int, runs: int, seed: int, concurrency: int) -> tuple[float, int, float]:
    results = [one_run(envs, n, seed, concurrency) for _ in range(runs)]
    return statistics.median(r[0] for r in results), results[0][1], results[0][2]


def profile(envs: list[str], n: int, seed: int, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    one_run(envs, n, seed, 1)
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return text.getvalue()


def whole_command(envs: list[str], n: int, seed: int, workers: int, concurrency: int,
                  code: Code) -> tuple[float, float, str]:
    """One ``toolgrad generate --workers W`` run of ``code`` in a fresh interpreter: (samples/s of the whole command, samples/s inside the run as its summary says,
    the sha256 of the dataset, its trace sidecar and its tool table)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.jsonl"
        args = ["--quiet", "generate", *(f"--env={e}" for e in envs), "--n", str(n), "--seed", str(seed),
                "--workers", str(workers), "--concurrency", str(concurrency), "--json", "-o", str(out)]
        start = time.perf_counter()
        done = subprocess.run(code.command(*args), capture_output=True, check=False, cwd=tmp, env=code.env())
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"toolgrad generate --workers {workers} failed: {done.stderr.decode()[-2000:]}")
        summary = json.loads(done.stdout)
        digest = hashlib.sha256()
        for path in (out, traces_path(out), tools_path(out)):
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return summary["new_samples"] / wall, summary["samples_per_second"], digest.hexdigest()


def compare_workers(envs: list[str], n: int, runs: int, seed: int, counts: list[int], concurrency: int,
                    baseline: str | None = None) -> None:
    """The whole command per number of workers (and per code, with a baseline), side by side:
    medians of interleaved runs."""
    with tempfile.TemporaryDirectory() as tmp:
        codes = [Code("this checkout", REPO_ROOT), *([Code(baseline[:14], checkout(baseline, Path(tmp)))]
                                                      if baseline else [])]
        results: dict[tuple[int, int], list[tuple[float, float, str]]] = {}
        load = os.getloadavg()[0]
        for _ in range(runs):
            for workers in counts:
                for i, code in enumerate(codes):
                    results.setdefault((i, workers), []).append(
                        whole_command(envs, n, seed, workers, concurrency, code))
    print(f"whole command `toolgrad generate --workers W`, offline, {len(envs)} environment(s), n={n}, "
          f"median of {runs} interleaved runs, seed {seed}; load average {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores")
    header = f"{'code':<16}{'workers':<9}{'samples/s (command)':>21}{'samples/s (in run)':>20}"
    print(header + f"{'ratio to ' + str(counts[0]):>13}" + (f"{'ratio to baseline':>19}" if baseline else ""))
    for i, code in enumerate(codes):
        first = statistics.median(r[0] for r in results[(i, counts[0])])
        for workers in counts:
            whole = statistics.median(r[0] for r in results[(i, workers)])
            inside = statistics.median(r[1] for r in results[(i, workers)])
            row = f"{code.label:<16}{workers:<9}{whole:>21.1f}{inside:>20.1f}"
            row += f"{whole / first:>13.2f}"
            if baseline:
                row += f"{whole / statistics.median(r[0] for r in results[(len(codes) - 1, workers)]):>19.2f}"
            print(row)
    for i, code in enumerate(codes):  # not across codes: the records name their git revision
        digests = {r[2] for w in counts for r in results[(i, w)]}
        same = "same bytes for every number of workers" if len(digests) == 1 else f"DIFFERENT BYTES: {sorted(digests)}"
        print(f"{code.label}: {same}")


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="samples per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--env", action="append", default=None, help="environment (repeat); default: all shipped")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--workers", default=None, help="e.g. 1,2: time the whole command per number of workers")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="with --workers: also time git revision REV's code, alternating, and give ratios to it")
    args = parser.parse_args(argv)
    envs = args.env or shipped_environments()
    if args.baseline and not args.workers:
        parser.error("--baseline needs --workers")
    if args.workers:
        counts = [int(w) for w in args.workers.split(",") if w.strip()]
        compare_workers(envs, args.n, args.runs, args.seed, counts, args.concurrency, args.baseline)
        return
    print(f"offline generation, n={args.n} per run, median of {args.runs} runs, seed {args.seed}, "
          f"concurrency {args.concurrency}")
    print(f"{'environment':<14}{'samples/s':>11}{'samples':>9}{'calls/sample':>14}")
    rows = [([env], env) for env in envs] + ([(envs, "all (multi-env)")] if len(envs) > 1 else [])
    rates, calls = [], []
    for group, label in rows:
        rate, written, mean_calls = bench(group, args.n, args.runs, args.seed, args.concurrency)
        print(f"{label:<14}{rate:>11.1f}{written:>9}{mean_calls:>14.2f}")
        if len(group) == 1:
            rates.append(rate)
            calls.append(mean_calls)
    if len(rates) > 1:
        print(f"{'mean per env':<14}{statistics.mean(rates):>11.1f}{'':>9}{statistics.mean(calls):>14.2f}")
    if args.profile:
        print(profile(envs, args.n, args.seed, args.top))


if __name__ == "__main__":
    main()

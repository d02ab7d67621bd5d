"""Generation speed with the offline policy: median samples/s over a few runs, and calls per
sample, per shipped environment (and over all of them together).

    toolgrad bench generate [--n 100] [--runs 3] [--env petstore ...]
                            [--concurrency 1] [--profile]

Each run writes a fresh dataset to a temporary directory; the time covers the whole
``generate_dataset`` call (toolbox start-up included). ``--profile`` adds a cProfile listing
of the top functions (cumulative and own time) of one run over all environments.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from simulator.environments.environment import shipped_environments
from toolgrad.dataset.runner import generate_dataset, read_samples
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


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="samples per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--env", action="append", default=None, help="environment (repeat); default: all shipped")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    envs = args.env or shipped_environments()
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

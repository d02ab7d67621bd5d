"""Lean lines and streaming: median bytes per dataset line at schema 2, 3 and 4 (the same
samples), what a line's bytes are, and the peak RSS of ``toolgrad certify`` at two dataset sizes.

    toolgrad bench lines [--env adafruit --env baskets --env crm] [--samples 100]
        [--sizes 200 1000] [--gb 1.0] [--workdir DIR] [--lines-only]

What it does, and what the figures are:

1. The offline generator writes ``--samples`` samples over the environments (schema 4: the line,
   its trace line in ``<data>.traces.jsonl``, the tool table in ``<data>.tools.json``).
2. Bytes per line: the median of the schema-4 lines, and of the same samples written as schema 3
   wrote them (the fingerprint of every environment of the run in each line) and as schema 2
   wrote them (also the trace and candidate tools' OpenAI specs inline); built from the same
   records, the trace lines and the tool table, so the columns describe the same samples. Then
   the median bytes of each field of a schema-4 line (``"key":value,``), and of each field of
   its steps and provenance summed over the line.
3. Larger datasets are made from the generated samples, repeated with distinct seeds (sample
   ``k`` is generated sample ``k mod n`` with seed ``k``; its trace line takes the seed, and
   ``trace_sha256`` and the id are computed again), so every line is a valid, distinct sample
   and certifies: the replay of a sample does not depend on its seed (a fresh session per line).
4. ``toolgrad certify`` runs on each as a child process (default workers); two peak RSS figures,
   read from ``/proc`` (``VmHWM``, a high-water mark, of every process of its tree, every 0.05 s
   until it exits; absent where there is no ``/proc``): the driver's own and the largest other
   process's (a worker). Not ``ru_maxrss`` from ``wait4``: Linux carries the spawning process's
   RSS into it across ``exec``, so it showed this script's own memory (120-170 MiB, the
   datasets it had built), not certify's. With ``--gb`` a dataset of that many GB is certified
   too (slow: it replays every step; hours on a loaded 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from simulator.canonical import sha256_hex, strict_canonical_json
from toolgrad.dataset.lines import read_tool_table, tools_path, trace_digest, traces_path
from toolgrad.dataset.runner import generate_dataset
from toolgrad.settings import GenerateSettings
from toolgrad.toolbox import Toolbox

DEFAULT_ENVS = ("adafruit", "baskets", "crm")


def schema_3_record(record: dict[str, Any], fingerprints: dict[str, Any]) -> dict[str, Any]:
    """The sample as toolgrad wrote it at schema 3: the fingerprint of every environment of the
    run (``fingerprints``) in its provenance, the id hashed again."""
    old = {k: v for k, v in record.items() if k != "id"}
    old.update(schema_version="3", provenance={**record["provenance"], "environments": fingerprints})
    return {**old, "id": sha256_hex(strict_canonical_json(old))}


def schema_2_line(record: dict[str, Any], trace_line: bytes, table: dict[str, Any]) -> bytes:
    """The sample as toolgrad wrote it at schema 2: the trace and the tools' specs inline."""
    old = {k: v for k, v in record.items() if k not in ("id", "trace_sha256")}
    old.update(schema_version="2", trace=orjson.loads(trace_line)["trace"],
               candidate_tools=[table[name] for name in record["candidate_tools"]])
    return strict_canonical_json({**old, "id": sha256_hex(strict_canonical_json(old))}) + b"\n"


def _field_bytes(record: dict[str, Any]) -> dict[str, int]:
    """Bytes of each field of a line (``"key":value,``), and of each field of its steps and of
    its provenance, summed over the line (``step.response``, ``provenance.environments``, ...)."""
    sizes = {key: len(strict_canonical_json(value)) + len(key) + 4 for key, value in record.items()}
    for step in (s for chain in record["chains"] for s in chain["steps"]):
        for key, value in step.items():
            sizes[f"step.{key}"] = sizes.get(f"step.{key}", 0) + len(strict_canonical_json(value)) + len(key) + 4
    for key, value in record["provenance"].items():
        sizes[f"provenance.{key}"] = len(strict_canonical_json(value)) + len(key) + 4
    return sizes


def line_sizes(path: Path) -> dict[str, Any]:
    """Median bytes per line: schema 4, 3 and 2 (the same samples), the trace line, each field of
    a line; and the tool table."""
    table = read_tool_table(path)
    data = path.read_bytes().splitlines(keepends=True)
    traces = traces_path(path).read_bytes().splitlines(keepends=True)
    records = [orjson.loads(line) for line in data]
    box = Toolbox.in_process(records[0]["provenance"]["generator"]["environments"])  # the run's, installed
    fingerprints = box.fingerprints()  # every environment of the run, called by a sample or not
    box.close()
    for record in records:
        if any(fingerprints[name] != fp for name, fp in record["provenance"]["environments"].items()):
            raise SystemExit(f"{path}: a line's fingerprint is not the installed environment's")
    v3 = [schema_3_record(record, fingerprints) for record in records]
    v2 = [len(schema_2_line(record, trace, table)) for record, trace in zip(v3, traces, strict=True)]
    fields: dict[str, list[int]] = {}
    for record in records:
        for key, size in _field_bytes(record).items():
            fields.setdefault(key, []).append(size)
    return {"schema_4": statistics.median(map(len, data)),
            "schema_3": statistics.median(len(strict_canonical_json(r)) + 1 for r in v3),
            "schema_2": statistics.median(v2),
            "trace_line": statistics.median(map(len, traces)), "tool_table": tools_path(path).stat().st_size,
            "samples": len(data),
            "fields": {key: statistics.median(sizes + [0] * (len(data) - len(sizes)))
                       for key, sizes in sorted(fields.items())}}


def scale(base: Path, out: Path, samples: int | None = None, gigabytes: float | None = None) -> int:
    """Write ``samples`` lines (or lines up to ``gigabytes`` of data) made from ``base``'s samples
    with distinct seeds (see the module text) beside their trace lines and the tool table; the
    number of samples written."""
    data = [orjson.loads(line) for line in base.read_bytes().splitlines()]
    traces = [orjson.loads(line) for line in traces_path(base).read_bytes().splitlines()]
    limit = int(gigabytes * 1e9) if gigabytes is not None else None
    written = size = 0
    with open(out, "wb") as fh, open(traces_path(out), "wb") as th:
        while (samples is None or written < samples) and (limit is None or size < limit):
            record, trace = dict(data[written % len(data)]), dict(traces[written % len(traces)])
            trace["seed"] = record["seed"] = written
            trace_line = strict_canonical_json(trace) + b"\n"
            record["trace_sha256"] = trace_digest(trace_line)
            record.pop("id")
            record["id"] = sha256_hex(strict_canonical_json(record))
            line = strict_canonical_json(record) + b"\n"
            fh.write(line)
            th.write(trace_line)
            size += len(line)
            written += 1
    shutil.copyfile(tools_path(base), tools_path(out))
    return written


def _tree(root: int) -> list[int]:
    """``root`` and its descendants now (``/proc/<pid>/task/<tid>/children``)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(child) for child in fh.read().split())
        except OSError:
            continue
    return found


def _watch_hwm(root: int, done: threading.Event, peaks: dict[int, float]) -> None:
    """``peaks``: each process of ``root``'s tree -> its ``VmHWM`` (MiB), read every 0.05 s
    until ``done`` (the mark only rises, so the last one read is the peak up to then)."""
    while not done.wait(0.05):
        for pid in _tree(root):
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for row in text.splitlines():
                if row.startswith("VmHWM:"):
                    peaks[pid] = max(peaks.get(pid, 0.0), int(row.split()[1]) / 1024)
                    break


def certify_child(path: Path) -> dict[str, Any]:
    """``toolgrad certify`` on ``path`` in a child process: its peak RSS (MiB), wall seconds,
    exit code and the certificate's counts."""
    cert = path.with_name(path.stem + ".certificate.json")
    # stderr to a file, not a pipe: a child that wrote more than a pipe holds would block on it
    # while this process waits for it to end
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.cli.app", "--quiet", "certify", str(path),
                                 "-o", str(cert)], stdout=subprocess.DEVNULL, stderr=stderr)
        peaks: dict[int, float] = {}
        done = threading.Event()
        watcher = threading.Thread(target=_watch_hwm, args=(proc.pid, done, peaks), daemon=True)
        watcher.start()
        code = proc.wait()
        wall = time.perf_counter() - started
        done.set()
        watcher.join()
        stderr.seek(max(0, stderr.seek(0, os.SEEK_END) - 2000))
        errors = stderr.read().decode(errors="replace")[-500:]
    others = [peak for pid, peak in peaks.items() if pid != proc.pid]
    result: dict[str, Any] = {"bytes": path.stat().st_size, "driver_rss_mib": peaks.get(proc.pid),
                              "worker_rss_mib": max(others) if others else None,
                              "wall_seconds": wall, "exit": code}
    if cert.is_file():
        data = orjson.loads(cert.read_bytes())
        result.update(samples=data["sample_count"], passed=data["passed"], steps=data["step_count"],
                      traces=data["traces"])
    else:
        result["error"] = errors
    return result


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--env", action="append", default=None, help="environment (repeat); default: "
                        + ", ".join(DEFAULT_ENVS))
    parser.add_argument("--samples", type=int, default=100, help="samples the generator writes")
    parser.add_argument("--sizes", type=int, nargs=2, default=(200, 1000), metavar=("SMALL", "LARGE"),
                        help="samples in the two certified datasets")
    parser.add_argument("--gb", type=float, default=None, help="also certify a dataset of this many GB (slow)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the datasets go (default: a temporary "
                        "directory, removed afterwards)")
    parser.add_argument("--lines-only", action="store_true", help="bytes per line only: certify nothing")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    envs = args.env or list(DEFAULT_ENVS)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="toolgrad-bench-lines-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        base = work / "base.jsonl"
        for stale in (base, traces_path(base)):
            stale.unlink(missing_ok=True)
        generate_dataset(GenerateSettings(envs=envs, n=args.samples, seed=0, output=str(base)))
        sizes = line_sizes(base)
        runs = []
        targets: list[tuple[str, int | None, float | None]] = \
            [] if args.lines_only else [(f"n{n}", n, None) for n in args.sizes]
        if args.gb is not None:
            targets.append((f"gb{args.gb:g}", None, args.gb))
        for label, samples, gigabytes in targets:
            path = work / f"{label}.jsonl"
            scale(base, path, samples, gigabytes)
            runs.append(certify_child(path))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    report = {"environments": envs, "lines": sizes, "certify": runs}
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    print(f"bytes per line, median over {sizes['samples']} offline samples ({', '.join(envs)}):")
    print(f"  schema 2 (trace and tool specs inline): {sizes['schema_2']:>9,.0f}")
    print(f"  schema 3 (every run fingerprint inline): {sizes['schema_3']:>9,.0f}")
    print(f"  schema 4 (lean line):                    {sizes['schema_4']:>9,.0f}"
          f"   ({sizes['schema_2'] / sizes['schema_4']:.1f}x smaller than 2, "
          f"{sizes['schema_3'] / sizes['schema_4']:.2f}x than 3)")
    print(f"  its trace line (<data>.traces.jsonl):    {sizes['trace_line']:>9,.0f}")
    print(f"  tool table, once per dataset:            {sizes['tool_table']:>9,.0f}")
    print("median bytes of each field of a schema-4 line (steps and provenance: summed over the line):")
    for key, size in sorted(sizes["fields"].items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {key:<30} {size:>9,.0f}")
    if not runs:
        return 0
    print("toolgrad certify, peak RSS in MiB of its driver and of its largest other process, a worker "
          "(samples repeated with distinct seeds):")
    print(f"  {'samples':>8} {'MB':>9} {'driver':>8} {'worker':>8} {'passed':>8} {'wall s':>8}")

    def mib(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    for run in runs:
        print(f"  {run.get('samples', 0):>8} {run['bytes'] / 1e6:>9.1f} {mib(run['driver_rss_mib']):>8} "
              f"{mib(run['worker_rss_mib']):>8} {run.get('passed', 0):>8} {run['wall_seconds']:>8.1f}"
              + (f"  exit {run['exit']}" if run['exit'] else ""))
    if len(runs) >= 2 and runs[0]["bytes"]:
        first, last = runs[0], runs[-1]
        grew = [f"{role} {last[key] - first[key]:+.1f} MiB" for role, key in (("driver", "driver_rss_mib"),
                ("worker", "worker_rss_mib")) if first[key] is not None and last[key] is not None]
        print(f"  RSS from the first to the last: {', '.join(grew) or 'not read (no /proc)'} for "
              f"{(last['bytes'] - first['bytes']) / 1e6:.1f} MB more data ({last['bytes'] / first['bytes']:.1f}x the bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

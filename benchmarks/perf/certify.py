"""Certification throughput: median replayed steps per second, in process.

    toolgrad bench certify [--samples 1000] [--repeats 5] [--workers 1]
        [--env adafruit --env baskets --env crm] [--data existing.jsonl]
    toolgrad bench certify --whole-command [--repeats 3] [--baseline REV] [--workers N] ...

The default dataset is issue 14's: 1,000 offline samples over adafruit, baskets and crm, seed 0
(the set its goal of 5,000 steps/s for the whole command is stated on).

``--whole-command`` times ``toolgrad certify`` as a user runs it instead, a fresh process per run,
against git revision ``--baseline`` side by side (:mod:`benchmarks.perf.certify_command`).

The dataset comes from the offline generator (``toolgrad.dataset.runner.generate_dataset``), or with
``--synthetic`` is synthesised by making real calls through a Toolbox (:func:`synthesise_dataset`):
a certificate does not care how a chain was chosen, only that every call in it was really made. Timing covers reading the file, replaying every step on fresh
sessions and building the certificate; sandboxes are built once, outside the timing (the
simulator memoises its seeded world per process, as a long certification run would).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks.certify.certificate import build_certificate, certificate_bytes, iter_certify, read_dataset
from benchmarks.certify.replay import sample_id
from benchmarks.certify.sandboxes import SandboxProvider
from simulator.datagen.generate import generate_value
from simulator.errors import SimulatorError
from toolgrad.loop.sources import detect_sources
from toolgrad.records import Chain, Cost, Provenance, Sample, Step, Trace
from toolgrad.toolbox import Toolbox

DEFAULT_ENVS = ("adafruit", "baskets", "crm")  # issue 14's set, as `bench lines`'s


def _pick(seed: int, step: int, attempt: int, options: Sequence[str]) -> str:
    digest = hashlib.sha256(orjson.dumps(["synth", seed, step, attempt])).digest()
    return options[int.from_bytes(digest[:8], "big") % len(options)]


def _arguments(toolbox: Toolbox, name: str, seed: int, step: int,
               earlier: list[tuple[int, int, Any]]) -> dict[str, Any]:
    """Schema-valid arguments; path arguments taken from an earlier response when one has a
    related key (so chains have real argument sources)."""
    tool = toolbox.tools[name].tool
    try:
        args = generate_value(tool.parameters, f"synth|{seed}|{step}|{name}")
    except (SimulatorError, ValueError):
        args = {}
    args = args if isinstance(args, dict) else {}
    for binding in tool.bindings:
        if binding.location != "path":
            continue
        for _, _, body in reversed(earlier):
            pointer = _related_pointer(body, binding.argument)
            if pointer is not None:
                args[binding.argument] = _resolve(body, pointer)
                break
    return args


def _related_pointer(body: Any, argument: str) -> str | None:
    # the first scalar under an "id" key, else under a key named like the argument
    for key in ("id", argument):
        pointer = _first_key(body, key, "")
        if pointer is not None:
            return pointer
    return None


def _first_key(node: Any, key: str, pointer: str, depth: int = 0) -> str | None:
    if depth > 3:
        return None
    if isinstance(node, dict):
        if key in node and isinstance(node[key], (str, int)) and not isinstance(node[key], bool):
            return f"{pointer}/{key}"
        for k, v in node.items():
            found = _first_key(v, key, f"{pointer}/{k}", depth + 1)
            if found is not None:
                return found
    elif isinstance(node, list) and node:
        return _first_key(node[0], key, f"{pointer}/0", depth + 1)
    return None


def _resolve(body: Any, pointer: str) -> Any:
    node = body
    for token in pointer[1:].split("/"):
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def synthesise_sample(toolbox: Toolbox, seed: int, *, chains: int = 2, steps: int = 3,
                      attempts: int = 8) -> Sample:
    """A sample of up to ``chains`` x ``steps`` real 2xx calls with detected argument sources.

    Tools are drawn from ``sha256(seed, step, attempt)``; a call that does not succeed is undone
    (the session's state is restored from a snapshot taken before it) and another tool is tried,
    so the chains hold only successful calls, as the generator's validator would have it."""
    session = f"synth-{seed}"
    toolbox.reset(session)
    names = toolbox.names()
    recorded: list[Chain] = []
    earlier: list[tuple[int, int, Any]] = []
    try:
        for ci in range(chains):
            chain_steps: list[Step] = []
            for n in range(steps):
                position = ci * steps + n
                for attempt in range(attempts):
                    name = _pick(seed, position, attempt, names)
                    bound = toolbox.tools[name]
                    sandbox = toolbox.sandboxes[bound.env]
                    before = sandbox.snapshot(session)
                    result = toolbox.call(session, name, _arguments(toolbox, name, seed, position, earlier))
                    if result.ok:
                        break
                    sandbox.restore(before, session)
                else:
                    continue
                sources = detect_sources(result.arguments, earlier)
                chain_steps.append(Step(env=bound.env, tool=name, operation_id=bound.tool.operation_id,
                                        arguments=dict(result.arguments), sources=sources, status=result.status,
                                        response=result.body, state_hash=result.state_hash))
                earlier.append((len(recorded), len(chain_steps) - 1, result.body))
            if chain_steps:
                recorded.append(Chain(steps=chain_steps))
    finally:
        toolbox.drop(session)
    used = sorted({s.tool for c in recorded for s in c.steps})
    sample = Sample(
        id="", seed=seed, query=f"synthetic sample {seed}", answer="synthetic",
        chains=recorded, candidate_tools=used, trace=Trace(),
        provenance=Provenance(environments=toolbox.fingerprints(), generator={"synthetic": True}, llm="offline"),
        cost=Cost(tool_calls=sum(len(c.steps) for c in recorded)),
    )
    return sample.model_copy(update={"id": sample_id(sample)})


def synthesise_dataset(envs: Iterable[str], n: int, path: Path, *, first_seed: int = 0) -> Path:
    toolbox = Toolbox.in_process(envs)
    with path.open("wb") as fh:
        for seed in range(first_seed, first_seed + n):
            fh.write(synthesise_sample(toolbox, seed).model_dump_json().encode() + b"\n")
    return path


def make_dataset(envs: Sequence[str], n: int, path: Path) -> tuple[Path, str]:
    """A dataset of ``n`` samples: from the offline generator when it exists, else synthesised."""
    try:
        from toolgrad.dataset.runner import generate_dataset
        from toolgrad.settings import GenerateSettings
    except ImportError:  # pragma: no cover - the generator ships with the kit
        return synthesise_dataset(envs, n, path), "synthesised through real Toolbox calls"
    generate_dataset(GenerateSettings.model_validate({"envs": list(envs), "n": n, "seed": 0, "output": str(path)}))
    return path, f"toolgrad offline generator over {', '.join(envs)}, seed 0"


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children, user + system. Worker processes are the
    fork server's children, reaped by it, not by this process: with ``--workers`` above 1 this
    is the driver's CPU alone (the report says so; ``--whole-command`` counts the whole tree)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def time_certify(path: Path, *, workers: int, repeats: int) -> tuple[list[float], list[float], int, bytes]:
    """Wall seconds and CPU seconds per full certification, the steps replayed, and the
    certificate bytes (CPU time says what the code costs when the machine is shared)."""
    walls: list[float] = []
    cpus: list[float] = []
    certificate = b""
    steps = 0
    with SandboxProvider("inprocess") as provider:
        dataset = read_dataset(path)
        list(iter_certify(dataset, provider))  # warm: build simulators and their seeded worlds
        for _ in range(repeats):
            start, cpu = time.perf_counter(), _cpu_seconds()
            dataset = read_dataset(path)
            checked = list(iter_certify(dataset, provider, workers=workers))
            cert = build_certificate(dataset.sha256, checked)
            walls.append(time.perf_counter() - start)
            cpus.append(_cpu_seconds() - cpu)
            steps = sum(c.verdict.replayed for c in checked)
            certificate = certificate_bytes(cert)
    return walls, cpus, steps, certificate


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None,
                        help="in process: replay workers (default 1); --whole-command: certify's --workers "
                             "(default: certify's own)")
    parser.add_argument("--env", action="append", dest="envs")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--synthetic", action="store_true", help="synthesise instead of generating")
    parser.add_argument("--whole-command", action="store_true",
                        help="time `toolgrad certify` in a fresh process per run (start-up included)")
    parser.add_argument("--baseline", metavar="REV",
                        help="with --whole-command: also time git revision REV, alternating runs")
    parser.add_argument("--startup-runs", type=int, default=5, help="with --whole-command: `toolgrad --version` runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is not None:
            path, origin = args.data, "given"
        elif args.synthetic:
            envs = args.envs or list(DEFAULT_ENVS)
            path = synthesise_dataset(envs, args.samples, Path(tmp) / "bench.jsonl")
            origin = "synthesised through real Toolbox calls"
        else:
            path, origin = make_dataset(args.envs or list(DEFAULT_ENVS), args.samples, Path(tmp) / "bench.jsonl")
        if args.whole_command:
            from .certify_command import run

            return run(path, origin, repeats=args.repeats, startup_runs=args.startup_runs, baseline=args.baseline,
                       workers=args.workers)
        workers = args.workers or 1
        walls, cpus, steps, certificate = time_certify(path, workers=workers, repeats=args.repeats)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    cert = orjson.loads(certificate)
    print(f"dataset: {cert['sample_count']} samples, {cert['step_count']} steps ({origin})")
    print(f"pass rate: {cert['pass_rate']:.3f}")
    print(f"workers: {workers}, repeats: {args.repeats}, median {wall:.3f}s wall, {cpu:.3f}s CPU per run; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"median steps/s: {steps / wall:.0f} (wall clock)")
    print(f"median steps per CPU second: {steps / cpu:.0f}"
          + (" (this process's CPU only: its workers' is not counted)" if workers > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

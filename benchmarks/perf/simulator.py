"""HTTP speed of one simulator process against Stoplight Prism and a bare uvicorn app, plus cold
start on the largest spec.

    toolgrad bench simulator [--runs 3] [--duration 10] [--connections 32]
                                                   [--prism PATH] [--skip-prism] [--json OUT]

Load comes from ``wrk`` (Debian: ``apt-get install -y wrk``) with a Lua script: a fixed mix of
50% ``GET /pet/{id}`` of existing ids, 25% ``GET /pet/findByStatus?status=available`` and 25%
``POST /pet`` without an id (a create), the same for every server, each request carrying the
credentials the spec asks for. Targets, one at a time on 127.0.0.1:

* ``simulator``: ``toolgrad sim serve envs/petstore`` (state reset before every run, so each
  run starts from the fixtures; creates accumulate within a run);
* ``prism``: ``prism mock -d <spec> -m -v warn`` (Prism 5; ``--prism``, ``$TOOLGRAD_PRISM``, or
  installed with npm into ``~/.cache/toolgrad-bench/prism`` when missing);
* ``bare-uvicorn``: a fixed-body ASGI app under the same uvicorn settings (the ceiling).

Figures are medians of ``--runs`` runs after a warm-up. Cold start is the time from starting
the command to the first 200 from ``GET /`` on ``github-api-v30.json`` (845 operations, 5.5 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]  # the checkout: benchmarks/perf/<this file>
PETSTORE = ROOT / "envs" / "petstore"
PETSTORE_SPEC = PETSTORE / "openapi.yaml"
GITHUB_SPEC = ROOT.parent / "shared" / "specs" / "github-api-v30.json"
PRISM_CACHE = Path.home() / ".cache" / "toolgrad-bench" / "prism"
PRISM_PACKAGE = "@stoplight/prism-cli@5"
TOOLGRAD = Path(sys.executable).with_name("toolgrad")
CREDENTIALS = {"api_key": "bench", "Authorization": "Bearer bench"}

MIX_LUA = """
-- 50% GET /pet/{id} (ids 1..5 exist), 25% GET /pet/findByStatus, 25% POST /pet (server-assigned id)
local counter = 0
local auth = {["api_key"] = "bench", ["Authorization"] = "Bearer bench"}
local post_headers = {["api_key"] = "bench", ["Authorization"] = "Bearer bench",
                      ["Content-Type"] = "application/json"}
local body = '{"name":"bench","photoUrls":["https://example.com/p.png"],"status":"pending"}'
request = function()
  counter = counter + 1
  local slot = counter % 4
  if slot == 0 or slot == 1 then
    return wrk.format("GET", "/pet/" .. tostring((counter % 5) + 1), auth)
  elseif slot == 2 then
    return wrk.format("GET", "/pet/findByStatus?status=available", auth)
  end
  return wrk.format("POST", "/pet", post_headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


async def bare_app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    """The ceiling: uvicorn answering a fixed JSON body, no routing, no validation."""
    if scope["type"] != "http":
        return
    body = b'{"id":1,"name":"doggie","photoUrls":[],"status":"available"}'
    await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})  # type: ignore[operator]


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Result:
    target: str
    runs: list[Run]

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.runs)

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.p99_ms for r in self.runs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(command: list[str], log: Path, cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def wait_for_200(url: str, process: subprocess.Popen[bytes], timeout: float) -> float:
    """Seconds until ``url`` answers 200 (polling every 20 ms); raises when the process dies."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            if httpx.get(url, headers=CREDENTIALS, timeout=2).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


def wrk(origin: str, script: Path, duration: int, connections: int, threads: int) -> Run:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), origin],
        capture_output=True, text=True, check=True, timeout=duration + 60,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return Run(data["requests"] / (data["duration_us"] / 1e6), data["p50_us"] / 1e3, data["p99_us"] / 1e3,
               data["errors"])


def prism_binary(explicit: str | None) -> Path:
    candidates = [explicit, os.environ.get("TOOLGRAD_PRISM"), str(PRISM_CACHE / "node_modules" / ".bin" / "prism")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    if shutil.which("npm") is None:
        raise SystemExit("prism not found and npm is missing: pass --prism PATH or --skip-prism")
    print(f"installing {PRISM_PACKAGE} into {PRISM_CACHE} ...", file=sys.stderr)
    PRISM_CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PRISM_CACHE), PRISM_PACKAGE],
                   check=True, capture_output=True, timeout=600)
    return PRISM_CACHE / "node_modules" / ".bin" / "prism"


def commands(prism: Path | None, spec_or_env: Path, port: int) -> dict[str, list[str]]:
    out = {
        "simulator": [str(TOOLGRAD), "sim", "serve", str(spec_or_env), "--host", "127.0.0.1", "--port", str(port)],
        "bare-uvicorn": [sys.executable, "-m", "uvicorn", "benchmarks.perf.simulator:bare_app", "--host",
                         "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
                         "--no-server-header", "--no-date-header"],
    }
    if prism is not None:
        out["prism"] = [str(prism), "mock", "-d", str(spec_or_env if spec_or_env.is_file() else PETSTORE_SPEC),
                        "-p", str(port), "-h", "127.0.0.1", "-m", "-v", "warn"]
    return out


def throughput(target: str, command_for: dict[str, list[str]], port: int, args: argparse.Namespace,
               script: Path, logs: Path) -> Result:
    origin = f"http://127.0.0.1:{port}"
    with running(command_for[target], logs / f"{target}.log", cwd=ROOT) as process:
        wait_for_200(f"{origin}/pet/1", process, timeout=120)
        wrk(origin, script, 2, args.connections, args.threads)  # warm-up
        runs = []
        for _ in range(args.runs):
            if target == "simulator":
                httpx.post(f"{origin}/_sim/reset", json={}, timeout=10).raise_for_status()
            runs.append(wrk(origin, script, args.duration, args.connections, args.threads))
    return Result(target, runs)


def cold_start(target: str, prism: Path | None, runs: int, logs: Path) -> list[float]:
    times = []
    for i in range(runs):
        port = free_port()
        command = commands(prism, GITHUB_SPEC, port)[target]
        with running(command, logs / f"cold-{target}-{i}.log", cwd=ROOT) as process:
            times.append(wait_for_200(f"http://127.0.0.1:{port}/", process, timeout=300))
    return times


def report(results: list[Result], cold: dict[str, list[float]]) -> str:
    lines = ["| server | req/s (median) | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|"]
    for r in results:
        errors = sum(run.errors for run in r.runs)
        lines.append(f"| {r.target} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {errors} |")
    by = {r.target: r for r in results}
    if "prism" in by:
        ours, prism = by["simulator"], by["prism"]
        lines.append(f"\nsimulator / prism throughput: {ours.rps / prism.rps:.1f}x; "
                     f"p99 {ours.p99_ms:.1f} ms vs {prism.p99_ms:.1f} ms")
    if "bare-uvicorn" in by:
        lines.append(f"simulator / bare uvicorn throughput: {by['simulator'].rps / by['bare-uvicorn'].rps:.2f}")
    for target, times in cold.items():
        lines.append(f"cold start {target} on {GITHUB_SPEC.name}: median {statistics.median(times):.2f} s "
                     f"({', '.join(f'{t:.2f}' for t in times)})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--prism", help="path to the prism binary")
    parser.add_argument("--skip-prism", action="store_true")
    parser.add_argument("--skip-cold-start", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required: apt-get install -y wrk")
    prism = None if args.skip_prism else prism_binary(args.prism)
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        script = logs / "mix.lua"
        script.write_text(MIX_LUA, encoding="utf-8")
        results = []
        for target in ["simulator", *(["prism"] if prism else []), "bare-uvicorn"]:
            port = free_port()
            results.append(throughput(target, commands(prism, PETSTORE, port), port, args, script, logs))
            print(f"{target}: {results[-1].rps:,.0f} req/s", file=sys.stderr)
        cold: dict[str, list[float]] = {}
        if not args.skip_cold_start and GITHUB_SPEC.is_file():
            for target in ["simulator", *(["prism"] if prism else [])]:
                cold[target] = cold_start(target, prism, args.runs, logs)
    text = report(results, cold)
    print(f"mix: 50% GET /pet/{{id}}, 25% findByStatus, 25% POST /pet; wrk -t{args.threads} "
          f"-c{args.connections} -d{args.duration}s x {args.runs} runs (medians); cpus: {os.cpu_count()}")
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"results": [asdict(r) for r in results], "cold_start_s": cold,
                                         "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))


if __name__ == "__main__":
    main()

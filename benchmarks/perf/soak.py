"""Soak: does one simulator server stay within its memory bounds under sustained hostile-ish load?

    toolgrad bench soak [--duration 600] [--sessions 50000] [--snapshots 5000]
                                              [--connections 32] [--phases reads,sessions,mix] [--json OUT]

Against one ``toolgrad sim serve envs/petstore`` process with its default limits (each phase
may get a fresh server: ``reads`` and ``sessions`` share one, ``mix`` gets its own):

* ``reads``: ``--duration`` seconds of reads and lists at the README's concurrency
  (``wrk -t1 -c32``: two thirds ``GET /pet/{id}``, one third ``findByStatus``), after a 30 s warm-up;
* ``sessions``: then ``--sessions`` distinct sessions with one create each (each pet named after
  its session, so every state differs) and ``--snapshots`` snapshots of them (wrk, 10 s rounds);
* ``mix``: the README's full mix (50% reads, 25% lists, 25% creates in one session) for
  ``--duration`` seconds: the session's records grow until ``--session-bytes`` stops them
  (507), which is the limit this phase is about.

The server's RSS (``/proc/PID/status``) is sampled every 2 s; reported per phase: RSS after
warm-up, at the end, the growth, the maximum, errors (connection errors and statuses other than
the expected ones), p99 latency, and what ``GET /_sim/usage`` says is held. Not a test: figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]  # the checkout: benchmarks/perf/<this file>
PETSTORE = ROOT / "envs" / "petstore"
TOOLGRAD = Path(sys.executable).with_name("toolgrad")
ADMIN_TOKEN = "soak-admin"  # the server is on loopback; the token only makes /_sim/usage readable
PET = '{"name":"soak","photoUrls":["https://example.com/p.png"],"status":"pending"}'

STATUS_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; full = 0; other = 0 end
function response(status, headers, body)
  if status < 300 then ok = ok + 1 elseif status == 507 then full = full + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local s_ok, s_full, s_other = 0, 0, 0
  for _, t in ipairs(threads) do
    s_ok = s_ok + t:get("ok"); s_full = s_full + t:get("full"); s_other = s_other + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "socket_errors": %d, '
    .. '"ok": %d, "full": %d, "other": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, s_ok, s_full, s_other))
end
"""
READS_LUA = """
local counter = 0
request = function()
  counter = counter + 1
  if counter % 3 == 0 then return wrk.format("GET", "/api/v3/pet/findByStatus?status=available") end
  return wrk.format("GET", "/api/v3/pet/" .. tostring((counter % 5) + 1))
end
""" + STATUS_LUA
MIX_LUA = """
local counter = 0
local post_headers = {["Content-Type"] = "application/json"}
local body = '{BODY}'
request = function()
  counter = counter + 1
  local slot = counter % 4
  if slot == 0 or slot == 1 then return wrk.format("GET", "/api/v3/pet/" .. tostring((counter % 5) + 1)) end
  if slot == 2 then return wrk.format("GET", "/api/v3/pet/findByStatus?status=available") end
  return wrk.format("POST", "/api/v3/pet", post_headers, body)
end
""".replace("{BODY}", PET) + STATUS_LUA


SESSIONS_LUA = """
local counter = 0
local offset, every = 0, 11
local post_headers = {["Content-Type"] = "application/json"}
init = function(args)
  offset = tonumber(args[1]) or 0; every = tonumber(args[2]) or 11
  ok = 0; full = 0; other = 0
end
request = function()
  counter = counter + 1
  local i = offset + counter
  if counter % every == 0 and i > 40 * every then
    -- a snapshot of a session written long enough ago for its write to have landed
    local headers = {["Content-Type"] = "application/json", ["X-Sim-Admin-Token"] = "{TOKEN}",
                     ["X-Sim-Session"] = "soak-" .. tostring(i - 20 * every - 1)}
    return wrk.format("POST", "/_sim/snapshot", headers, "{}")
  end
  post_headers["X-Sim-Session"] = "soak-" .. tostring(i)
  return wrk.format("POST", "/api/v3/pet", post_headers, '{"name":"soak-' .. tostring(i) .. '","photoUrls":[]}')
end
""".replace("{TOKEN}", ADMIN_TOKEN) + STATUS_LUA.replace("function init(args) ok = 0; full = 0; other = 0 end\n", "")


@dataclass
class Phase:
    name: str
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_max_mb: float = 0.0
    requests: int = 0
    errors: int = 0
    refused_full: int = 0  # 507: the session's record limit
    rps: float = 0.0
    p99_ms: float = 0.0
    usage: dict[str, object] = field(default_factory=dict)

    @property
    def growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_start_mb


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """Samples a process's RSS every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 2.0) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_mb(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_mb(self.pid))


@contextmanager
def server(port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = [str(TOOLGRAD), "sim", "serve", str(PETSTORE), "--port", str(port), "--admin-token", ADMIN_TOKEN]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        origin = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(origin + "/_sim/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(20)


def usage(origin: str) -> dict[str, object]:
    return dict(httpx.get(origin + "/_sim/usage", headers={"x-sim-admin-token": ADMIN_TOKEN}, timeout=30).json())


def run_wrk(origin: str, script: Path, seconds: int, connections: int, extra: list[str] | None = None) -> dict[str, int]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), origin]
    out = subprocess.run([*command, *(["--", *extra] if extra else [])],
                         capture_output=True, text=True, check=True, timeout=seconds + 120).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def wrk_phase(name: str, origin: str, pid: int, script: Path, seconds: int, connections: int) -> Phase:
    run_wrk(origin, script, 30, connections)  # warm-up: caches, allocator arenas, the first session
    phase = Phase(name, rss_start_mb=rss_mb(pid))
    with RssSampler(pid) as sampler:
        data = run_wrk(origin, script, seconds, connections)
    phase.rss_end_mb, phase.rss_max_mb = sampler.samples[-1], max(sampler.samples)
    phase.requests = data["requests"]
    phase.errors = data["socket_errors"] + data["other"]
    phase.refused_full = data["full"]
    phase.rps = data["requests"] / (data["duration_us"] / 1e6)
    phase.p99_ms = data["p99_us"] / 1e3
    phase.usage = usage(origin)
    return phase


def sessions_phase(origin: str, pid: int, sessions: int, snapshots: int, connections: int, script: Path) -> Phase:
    """``sessions`` creates, each in a new session, and ``snapshots`` snapshots of sessions written
    a while before (so their write has landed), by wrk in 10 s rounds until enough were made."""
    total = int(sessions + snapshots)
    every = max(2, round(total / max(1, snapshots)))  # one request in `every` is a snapshot
    phase = Phase("sessions", rss_start_mb=rss_mb(pid))
    offset = 0
    p99s: list[float] = []
    elapsed = 0.0
    with RssSampler(pid) as sampler:
        while phase.requests < total:
            data = run_wrk(origin, script, 10, connections, extra=[str(offset), str(every)])
            phase.requests += data["requests"]
            phase.errors += data["socket_errors"] + data["other"]
            p99s.append(data["p99_us"] / 1e3)
            elapsed += data["duration_us"] / 1e6
            offset += data["requests"] + 10 * connections  # past any request still in flight
    phase.rss_end_mb, phase.rss_max_mb = sampler.samples[-1], max(sampler.samples)
    phase.rps = phase.requests / elapsed
    phase.p99_ms = max(p99s)
    phase.usage = usage(origin)
    return phase


def report(phases: list[Phase]) -> str:
    lines = ["| phase | requests | req/s | p99 ms | errors | 507 | RSS start MB | RSS end MB | growth MB | max MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in phases:
        lines.append(f"| {p.name} | {p.requests:,} | {p.rps:,.0f} | {p.p99_ms:.2f} | {p.errors} | {p.refused_full:,} "
                     f"| {p.rss_start_mb:.0f} | {p.rss_end_mb:.0f} | {p.growth_mb:+.0f} | {p.rss_max_mb:.0f} |")
    for p in phases:
        u = p.usage
        lines.append(f"{p.name}: held {u.get('sessions')} sessions, {u.get('snapshots')} snapshots, "
                     f"{int(str(u.get('held_bytes', 0))) / 2**20:.1f} MiB of state; evicted "
                     f"{u.get('evicted_sessions')} sessions, {u.get('evicted_snapshots')} snapshots")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=600, help="seconds of the reads and mix phases")
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--snapshots", type=int, default=5_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--phases", default="reads,sessions,mix")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required: apt-get install -y wrk")
    wanted = set(args.phases.split(","))
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        reads, mix, many = logs / "reads.lua", logs / "mix.lua", logs / "sessions.lua"
        reads.write_text(READS_LUA)
        mix.write_text(MIX_LUA)
        many.write_text(SESSIONS_LUA)
        port = 18000 + os.getpid() % 1000
        if wanted & {"reads", "sessions"}:
            with server(port, logs / "server-a.log") as process:
                origin = f"http://127.0.0.1:{port}"
                if "reads" in wanted:
                    phases.append(wrk_phase("reads", origin, process.pid, reads, args.duration, args.connections))
                    print(report(phases[-1:]), file=sys.stderr)
                if "sessions" in wanted:
                    phases.append(sessions_phase(origin, process.pid, args.sessions, args.snapshots, args.connections,
                                                 many))
                    print(report(phases[-1:]), file=sys.stderr)
        if "mix" in wanted:
            with server(port + 1, logs / "server-b.log") as process:
                phases.append(wrk_phase("mix", f"http://127.0.0.1:{port + 1}", process.pid, mix, args.duration,
                                        args.connections))
    print(f"petstore, default limits; wrk -t1 -c{args.connections}; {args.duration} s per timed phase; "
          f"{args.sessions:,} sessions, {args.snapshots:,} snapshots; cpus: {os.cpu_count()}")
    print(report(phases))
    if args.json:
        args.json.write_text(json.dumps([asdict(p) | {"growth_mb": p.growth_mb} for p in phases], indent=2))


if __name__ == "__main__":
    main()

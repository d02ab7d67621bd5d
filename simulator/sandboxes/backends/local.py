"""The local-process backend: each environment is a `toolgrad sim serve` subprocess on 127.0.0.1.

Processes run in their own session (process group), so ``toolgrad sim up`` can exit and leave
them serving, and stopping one also stops anything it spawned. Processes started for library
use (``detach=False``) are also asked to die with their parent (Linux ``PR_SET_PDEATHSIG``), so
a test run that is killed leaves no server behind.

Each child carries ``TOOLGRAD_SIM_SERVICE=<mode>:<ledger key>:<name>`` in its environment:
that marks it as ours, so a stop never signals a process that merely reused a recorded pid,
and ``orphans()`` finds the detached servers of this ledger even when its file is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .base import (
    EventHandler,
    PortInUseError,
    ServiceEvent,
    ServiceHandle,
    ServiceRequest,
    ServiceStartError,
    ServiceStatus,
    free_port,
    port_is_free,
    tail_lines,
)
from .health import PendingService, probe, wait_until_healthy
from .ledger import ledger_key, state_dir

NAME = "local"
MARKER = "TOOLGRAD_SIM_SERVICE"
HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 5.0
AUTO_PORT_TRIES = 3

ArgvFactory = Callable[[str, str, int, int | None], list[str]]


# `toolgrad sim serve` without the console script (it may not be on PATH) and without importing
# the top-level CLI package (simulator imports nothing of ours); a SimulatorError ends in one
# line and exit 2, so the log tail in a start error says what went wrong.
_SERVE_SNIPPET = """\
import sys
from simulator.cli.app import sim_app
from simulator.errors import SimulatorError
try:
    sim_app(["serve", *sys.argv[1:]], prog_name="toolgrad sim")
except SimulatorError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


def serve_argv(env: str, host: str, port: int, seed: int | None) -> list[str]:
    """The command line of one server: `toolgrad sim serve` run by this interpreter."""
    argv = [sys.executable, "-c", _SERVE_SNIPPET, env, "--host", host, "--port", str(port)]
    return argv if seed is None else [*argv, "--seed", str(seed)]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _proc_environ(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None


def _is_ours(pid: int, name: str | None = None) -> bool:
    """The process exists and carries our marker (for ``name`` when given)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    environ = _proc_environ(pid)
    if environ is None:
        # No /proc (not Linux): trust the pid recorded by whoever started it.
        return not Path("/proc").is_dir()
    for item in environ.split(b"\0"):
        if item.startswith(MARKER.encode() + b"="):
            value = item.split(b"=", 1)[1].decode("utf-8", "replace")
            return name is None or value.rsplit(":", 1)[-1] == name
    return False


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


class LocalBackend:
    """Start ``toolgrad sim serve`` subprocesses; ``detach=True`` for servers that outlive us."""

    name = NAME

    def __init__(self, *, detach: bool = False, argv: ArgvFactory = serve_argv, log_dir: Path | None = None):
        self.detach = detach
        self.argv = argv
        self.log_dir = log_dir
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    # -- starting ----------------------------------------------------------------------------

    def _log_path(self, name: str, port: int) -> Path:
        directory = self.log_dir if self.log_dir is not None else state_dir() / "logs"
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{name}-{port}.log"

    def _spawn(self, request: ServiceRequest, port: int) -> tuple[ServiceHandle, Path]:
        log_path = self._log_path(request.name, port)
        env = dict(os.environ)
        env[MARKER] = f"up:{ledger_key()}:{request.name}" if self.detach else f"lib:-:{request.name}"
        env["PYTHONUNBUFFERED"] = "1"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                self.argv(request.env, HOST, port, request.seed),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=None if self.detach else _die_with_parent,
            )
        self._procs[proc.pid] = proc
        handle = ServiceHandle(request.name, f"http://{HOST}:{port}", NAME, str(proc.pid))
        return handle, log_path

    def _exit_reason(self, pid: int) -> str | None:
        proc = self._procs.get(pid)
        if proc is None:
            return None
        code = proc.poll()
        return None if code is None else f"the process exited with code {code}"

    def start(
        self, requests: Sequence[ServiceRequest], *, timeout: float, on_event: EventHandler
    ) -> list[ServiceHandle]:
        started: list[ServiceHandle] = []
        try:
            for request in requests:
                started.append(self._start_one(request, timeout=timeout, on_event=on_event))
        except BaseException:
            self.stop(started, on_event=on_event)
            raise
        return started

    def _start_one(self, request: ServiceRequest, *, timeout: float, on_event: EventHandler) -> ServiceHandle:
        tries = 1 if request.host_port is not None else AUTO_PORT_TRIES
        for attempt in range(tries):
            port = request.host_port if request.host_port is not None else free_port(HOST)
            if not port_is_free(port, HOST):
                raise PortInUseError(request.name, port)
            on_event(ServiceEvent("starting", request.name, NAME, f"{request.env} on {HOST}:{port}"))
            handle, log_path = self._spawn(request, port)
            pid = int(handle.ident)
            try:
                failure = wait_until_healthy(
                    [PendingService(handle.name, handle.base_url, functools.partial(self._exit_reason, pid))],
                    timeout=timeout,
                )
            except BaseException:
                self._stop_pid(pid)
                raise
            if failure is None:
                on_event(ServiceEvent("healthy", handle.name, NAME, handle.base_url))
                return handle
            self._stop_pid(pid)
            log = tail_lines(log_path.read_text("utf-8", "replace")) if log_path.exists() else []
            with contextlib.suppress(OSError):
                log_path.unlink()
            lost_port_race = any("address already in use" in line.lower() for line in log)
            if lost_port_race and request.host_port is None and attempt + 1 < tries:
                continue  # another process took the free port between our check and its bind
            if lost_port_race:
                raise PortInUseError(request.name, port)
            on_event(ServiceEvent("failed", handle.name, NAME, failure.reason))
            raise ServiceStartError(handle.name, failure.reason, log)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- stopping ----------------------------------------------------------------------------

    def _stop_pid(self, pid: int) -> None:
        proc = self._procs.pop(pid, None)
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
                try:
                    proc.wait(STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                    proc.wait()
            return
        # Started by another process (an earlier `toolgrad sim up`): we can signal, not wait.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def stop(self, handles: Sequence[ServiceHandle], *, on_event: EventHandler) -> None:
        for handle in handles:
            pid = int(handle.ident)
            if pid not in self._procs and not _is_ours(pid, handle.name):
                on_event(ServiceEvent("stopped", handle.name, NAME, "already gone"))
                continue
            on_event(ServiceEvent("stopping", handle.name, NAME, f"pid {pid}"))
            self._stop_pid(pid)
            port = handle.base_url.rsplit(":", 1)[-1]
            with contextlib.suppress(OSError, ValueError):
                self._log_path(handle.name, int(port)).unlink()
            on_event(ServiceEvent("stopped", handle.name, NAME, f"pid {pid}"))

    # -- looking -----------------------------------------------------------------------------

    def status(self, handles: Sequence[ServiceHandle]) -> list[ServiceStatus]:
        result: list[ServiceStatus] = []
        for handle in handles:
            pid = int(handle.ident)
            if not _pid_alive(pid) or not (pid in self._procs or _is_ours(pid, handle.name)):
                result.append(ServiceStatus(handle, "missing", f"pid {pid} is gone"))
            elif probe(handle.base_url):
                result.append(ServiceStatus(handle, "healthy", f"pid {pid}"))
            else:
                result.append(
                    ServiceStatus(handle, "unhealthy", f"pid {pid} does not answer its health check")
                )
        return result

    def orphans(self) -> list[ServiceHandle]:
        """This ledger's detached servers (``toolgrad sim up``), found by their marker; ports from argv."""
        found: list[ServiceHandle] = []
        proc_root = Path("/proc")
        if not proc_root.is_dir():
            return found
        prefix = f"{MARKER}=up:{ledger_key()}:".encode()
        for entry in proc_root.iterdir():
            if not entry.name.isdigit() or not _leads_group(int(entry.name)):
                continue  # a server's own children inherit the marker: count group leaders only
            environ = _proc_environ(int(entry.name))
            if not environ:
                continue
            for item in environ.split(b"\0"):
                if item.startswith(prefix):
                    name = item[len(prefix) :].decode("utf-8", "replace")
                    port = _argv_port(int(entry.name))
                    base_url = f"http://{HOST}:{port}" if port else ""
                    found.append(ServiceHandle(name, base_url, NAME, entry.name))
        return sorted(found, key=lambda h: (h.name, int(h.ident)))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _argv_port(pid: int) -> int | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    for flag, value in itertools.pairwise(argv):
        if flag == b"--port" and value.isdigit():
            return int(value)
    return None

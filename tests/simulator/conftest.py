"""Shared fixtures for the simulator tests: shipped environments, in-process simulators and real
``toolgrad sim serve`` uvicorn processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from simulator.environments.environment import Environment, load_environment, shipped_environments
from simulator.service.simulator import Simulator

SHIPPED = shipped_environments()
START_TIMEOUT_S = 60.0
TOOLGRAD = Path(sys.executable).with_name("toolgrad")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServedEnv:
    """A running ``toolgrad sim serve`` process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def start_server(env: str, log_dir: Path, *, hash_seed: str = "0", extra: tuple[str, ...] = (),
                 environ: dict[str, str] | None = None, command: tuple[str, ...] = ("sim", "serve")) -> ServedEnv:
    """Start ``toolgrad sim serve ENV`` (or another ``command`` taking ENV, --host and --port, such
    as ``sim mcp``) on a free loopback port and wait for /_sim/health."""
    port = free_port()
    log = log_dir / f"{env.replace(' ', '+')}-{port}.log"
    environ = {**os.environ, "PYTHONHASHSEED": hash_seed, **(environ or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(TOOLGRAD), *command, *env.split(), "--host", "127.0.0.1", "--port", str(port), *extra],
            stdout=out, stderr=subprocess.STDOUT, env=environ, start_new_session=True,
        )
    served = ServedEnv(env, port, process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"`toolgrad {' '.join(command)} {env}` exited with {process.returncode}:\n"
                               f"{log.read_text()}")
        try:
            if httpx.get(f"{served.origin}/_sim/health", timeout=1.0).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    served.stop()
    raise RuntimeError(f"`toolgrad {' '.join(command)} {env}` did not answer /_sim/health in {START_TIMEOUT_S}s:\n"
                       f"{log.read_text()}")


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServedEnv]]:
    """Start servers on demand; every one started is stopped at the end of the session."""
    started: list[ServedEnv] = []
    log_dir = tmp_path_factory.mktemp("servers")

    def start(env: str, *, hash_seed: str = "0", extra: tuple[str, ...] = (),
              environ: dict[str, str] | None = None, command: tuple[str, ...] = ("sim", "serve")) -> ServedEnv:
        served = start_server(env, log_dir, hash_seed=hash_seed, extra=extra, environ=environ, command=command)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture(scope="module")
def served_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedEnv]:
    """A real uvicorn server for the environment named by indirect parametrisation (default petstore)."""
    name = getattr(request, "param", "petstore")
    served = start_server(name, tmp_path_factory.mktemp(f"serve-{name}"))
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="session")
def environments() -> dict[str, Environment]:
    return {name: load_environment(name) for name in SHIPPED}


@pytest.fixture
def simulator_for() -> Callable[..., Simulator]:
    """A fresh in-process simulator for a shipped environment."""

    def make(name: str, **kwargs: str) -> Simulator:
        return Simulator(load_environment(name), **kwargs)

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The state round-trip figure per spec (test_state_roundtrip.py), when any ran."""
    import roundtrip

    if not roundtrip.FIGURES:
        return
    terminalreporter.section("state round trips: written fields read back, listed items read, deletes stick")
    for label in sorted(roundtrip.FIGURES):
        terminalreporter.write_line(f"{label:40s} {roundtrip.FIGURES[label].figure()}")

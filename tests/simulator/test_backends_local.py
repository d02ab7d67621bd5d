"""The local-process backend: real `toolgrad sim serve` subprocesses on 127.0.0.1 (no docker)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from simulator.cli.sandbox import sandbox_app
from simulator.environments.environment import load_environment
from simulator.messages import SimRequest
from simulator.sandboxes.backends import (
    BackendError,
    PortInUseError,
    ServiceStartError,
    running_services,
    services_status,
    start_services,
    stop_services,
)
from simulator.sandboxes.backends.base import ServiceHandle, plan_requests, port_is_free, service_name
from simulator.sandboxes.backends.ledger import Ledger
from simulator.sandboxes.backends.local import MARKER, LocalBackend
from simulator.sandboxes.http import HTTPSandbox
from simulator.sandboxes.inprocess import InProcessSandbox
from tests.support.sandbox_contract import PETSTORE_SEQUENCE

pytestmark = pytest.mark.timeout(120)

@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ledger and log dir; whatever a test leaves running is stopped afterwards.

    Only this test's servers: a developer's own `toolgrad sim up` services are never touched.
    """
    state = tmp_path / "state"
    monkeypatch.setenv("TOOLGRAD_STATE_DIR", str(state))
    yield state
    stop_services(Ledger().handles())
    for pid in _our_pids():
        os.killpg(pid, signal.SIGKILL)


def _our_pids() -> list[int]:
    """Servers started by this test process (detached or not) that are still alive."""
    mine: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if MARKER.encode() + b"=" in environ and int(ppid) == os.getpid() and state != "Z":
            mine.append(int(entry.name))
    return mine


def _run(sandbox: object, sequence: list[SimRequest]) -> list[tuple[int, tuple[tuple[str, str], ...], bytes]]:
    out = []
    for request in sequence:
        response = sandbox.request(request)  # type: ignore[attr-defined]
        out.append((response.status, response.headers, response.body))
    return out


# --- pure helpers ------------------------------------------------------------------------------


def test_plan_requests_numbers_ports_and_rejects_duplicates() -> None:
    plan = plan_requests(["petstore", "museum"], seed=3, port_base=9000)
    assert [(r.name, r.host_port, r.seed) for r in plan] == [("petstore", 9000, 3), ("museum", 9001, 3)]
    with pytest.raises(BackendError, match="both be served as 'petstore'"):
        plan_requests(["petstore", "/x/petstore.yaml"], seed=0, port_base=None)
    with pytest.raises(BackendError, match="no environment"):
        plan_requests([], seed=0, port_base=None)


def test_service_name_is_safe_for_containers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert service_name("petstore") == "petstore"
    assert service_name("/specs/Swagger Petstore v3.yaml") == "swagger-petstore-v3"
    assert service_name("./My_API/") == "my_api"
    (tmp_path / "My-Env").mkdir()
    monkeypatch.chdir(tmp_path / "My-Env")
    assert service_name(".") == "my-env" and service_name("./") == "my-env", "the current folder's name"


# --- running servers -----------------------------------------------------------------------------


def test_running_services_serve_the_same_bytes_as_in_process() -> None:
    with running_services(["petstore"], backend="local", seed=0) as [handle]:
        assert handle.backend == "local" and handle.base_url.startswith("http://127.0.0.1:")
        remote = HTTPSandbox(handle.base_url, handle.name)
        local = InProcessSandbox(load_environment("petstore", seed=0))
        try:
            assert remote.state_hash() == local.state_hash()
            assert _run(remote, PETSTORE_SEQUENCE) == _run(local, PETSTORE_SEQUENCE)
            assert remote.state_hash() == local.state_hash()
            assert remote.journal() == local.journal()
        finally:
            remote.close()
        pid = int(handle.ident)
    assert pid not in _our_pids()
    assert port_is_free(int(handle.base_url.rsplit(":", 1)[1]))


def test_port_already_taken_is_a_clear_error_and_starts_nothing() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port} is already in use") as info:
            start_services(["petstore"], backend="local", port_base=port)
        assert info.value.service == "petstore"
    assert _our_pids() == []
    assert Ledger().handles() == []


def test_unknown_environment_names_the_service_and_shows_its_log() -> None:
    with pytest.raises(ServiceStartError) as info:
        start_services(["petstore", "no-such-env"], backend="local", timeout=30)
    error = info.value
    assert error.service == "no-such-env"
    assert "exited with code" in str(error)
    assert any("no-such-env" in line for line in error.log_tail), error.log_tail
    # all-or-nothing: petstore, started first, was stopped again
    assert _our_pids() == []
    assert Ledger().handles() == []


def _states(handles: list[ServiceHandle]) -> dict[str, str]:
    idents = {h.ident for h in handles}
    return {s.handle.name: s.state for s in services_status() if s.handle.ident in idents}


def test_detached_services_are_recorded_and_stopped_by_a_later_call() -> None:
    handles = start_services(["petstore", "museum"], backend="local", port_base=None)
    assert {h.name for h in handles} == {"petstore", "museum"}
    assert Ledger().handles() == sorted(handles, key=lambda h: (h.backend, h.name, h.ident))
    assert _states(handles) == {"petstore": "healthy", "museum": "healthy"}

    # A later process knows them only from the ledger: stop_services() reads it.
    stopped = stop_services(Ledger().handles())
    assert {h.name for h in stopped} == {"petstore", "museum"}
    assert _our_pids() == []
    assert Ledger().handles() == []
    assert _states(handles) == {}


def test_down_finds_this_ledgers_servers_when_its_file_is_lost(
    isolated_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLGRAD_STATE_DIR", str(isolated_state.parent / "other"))
    [foreign] = start_services(["museum"], backend="local")  # recorded in another ledger
    monkeypatch.setenv("TOOLGRAD_STATE_DIR", str(isolated_state))
    try:
        [handle] = start_services(["petstore"], backend="local")
        (isolated_state / "services.json").unlink()
        assert _states([handle, foreign]) == {"petstore": "unrecorded"}
        stopped = stop_services()  # what `toolgrad sim down` does
        assert stopped == [handle]  # name, url (from its argv) and pid recovered from the process
        assert _our_pids() == [int(foreign.ident)]  # another ledger's server is left alone
    finally:
        stop_services([foreign])
    assert _our_pids() == []


def test_stop_skips_a_pid_that_is_not_ours() -> None:
    # pid 1 is never one of our servers: stopping a handle naming it must not signal it
    fake = ServiceHandle("petstore", "http://127.0.0.1:1", "local", "1")
    events: list[str] = []
    LocalBackend().stop([fake], on_event=lambda e: events.append(e.detail))
    assert events == ["already gone"]


def test_cli_up_status_down(isolated_state: Path) -> None:
    runner = CliRunner()
    up = runner.invoke(sandbox_app, ["up", "petstore", "--backend", "local"])
    assert up.exit_code == 0, up.output
    name, url = up.stdout.strip().splitlines()[-1].split()
    assert name == "petstore"
    assert httpx.get(url + "/_sim/health", trust_env=False).status_code == 200

    status = runner.invoke(sandbox_app, ["status"])
    assert status.exit_code == 0, status.output
    assert "healthy" in status.stdout

    # `down` stops everything recorded (the ledger is this test's own) and unrecorded servers of
    # ours; the latter could include a developer's, so it is exercised through the ledger here.
    down = runner.invoke(sandbox_app, ["down"])
    assert down.exit_code == 0, down.output
    assert _our_pids() == []


def test_cli_reports_errors_without_traceback() -> None:
    result = CliRunner().invoke(sandbox_app, ["up", "petstore", "--backend", "nope"])
    assert result.exit_code == 2
    assert "unknown backend 'nope'" in result.output
    assert "Traceback" not in result.output


def test_servers_outlive_the_up_command(isolated_state: Path) -> None:
    """`toolgrad sim up` exits; its servers keep serving until `toolgrad sim down`."""
    toolgrad = [sys.executable, "-m", "benchmarks.cli.app", "sim"]
    env = {**os.environ, "TOOLGRAD_STATE_DIR": str(isolated_state)}
    up = subprocess.run(
        [*toolgrad, "up", "petstore"], capture_output=True, text=True, env=env, timeout=90, check=False
    )
    assert up.returncode == 0, up.stderr
    name, url = up.stdout.split()
    assert name == "petstore"
    assert httpx.get(url + "/_sim/health", trust_env=False).status_code == 200  # the `up` process is gone

    status = subprocess.run(
        [*toolgrad, "status"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert status.returncode == 0, status.stderr
    assert "healthy" in status.stdout

    down = subprocess.run(
        [*toolgrad, "down"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert down.returncode == 0, down.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_sim/health", trust_env=False)
    assert Ledger().handles() == []

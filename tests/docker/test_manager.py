"""The sandbox manager on the docker SDK (and, for comparison, the local backend): behaviour and faults."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker.client import from_env
from sim_scenario import ENVS, observe, reference, wait_healthy

from simulator.errors import SimulatorError
from simulator.sandboxes.backends import (
    EngineUnavailableError,
    ImageMissingError,
    PortInUseError,
    ServiceStartError,
    make_backend,
    running_services,
    services_status,
    start_services,
    stop_services,
)
from simulator.sandboxes.backends.base import free_port
from simulator.sandboxes.backends.ledger import Ledger
from simulator.sandboxes.http import HTTPSandbox
from tests.support.docker_tier import IMAGE, labelled_containers

pytestmark = pytest.mark.timeout(300)
docker_tier = pytest.mark.docker


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TOOLGRAD_STATE_DIR", str(tmp_path / "state"))
    yield tmp_path / "state"


@pytest.fixture
def no_new_containers() -> Iterator[None]:
    """The test must leave no labelled container behind (it removes strays, then fails)."""
    before = labelled_containers()
    yield
    left = labelled_containers() - before
    if left:
        client = from_env()
        for ident in left:
            client.containers.get(ident).remove(force=True, v=True)
    assert not left, f"containers left behind: {sorted(left)}"


@pytest.mark.parametrize("backend", [pytest.param("docker", marks=docker_tier), "local"])
def test_services_match_in_process_and_survive_a_restart(
    backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "docker":
        request.getfixturevalue("no_new_containers")
    with running_services(list(ENVS), backend=backend, seed=0, image=IMAGE) as handles:
        assert [h.name for h in handles] == list(ENVS)
        for handle in handles:
            assert bool(handle.admin_token) == (backend == "docker"), "containers bind 0.0.0.0: closed control API"
            sandbox = HTTPSandbox(handle.base_url, handle.name, admin_token=handle.admin_token)
            try:
                remote = observe(sandbox, handle.name, session="manager")
            finally:
                sandbox.close()
            assert remote == reference(handle.name, session="manager")

        if backend == "docker":
            first = handles[0]
            client = from_env()
            container = client.containers.get(first.ident)
            host_config = container.attrs["HostConfig"]
            assert host_config["ReadonlyRootfs"] is True and host_config["CapDrop"] == ["ALL"]
            assert host_config["SecurityOpt"] == ["no-new-privileges:true"] and host_config["PidsLimit"] == 256
            container.restart(timeout=3)
            wait_healthy(first.base_url)  # the published port survives a restart
            sandbox = HTTPSandbox(first.base_url, first.name, admin_token=first.admin_token)
            try:
                assert observe(sandbox, first.name, session="manager") == reference(
                    first.name, session="manager"
                )
            finally:
                sandbox.close()
        idents = [h.ident for h in handles]
    if backend == "docker":
        assert not labelled_containers() & set(idents)


@docker_tier
@pytest.mark.usefixtures("no_new_containers")
def test_detached_containers_are_found_by_status_and_down(isolated_state: Path) -> None:
    handles = start_services(list(ENVS), backend="docker", image=IMAGE)
    try:
        idents = {h.ident for h in handles}
        states = {s.handle.name: s.state for s in services_status() if s.handle.ident in idents}
        assert states == dict.fromkeys(ENVS, "healthy")
        # Without the ledger they are still found, by their label (what `down` stops).
        (isolated_state / "services.json").unlink()
        states = {s.handle.name: s.state for s in services_status() if s.handle.ident in idents}
        assert states == dict.fromkeys(ENVS, "unrecorded")
        found = [h for h in make_backend("docker").orphans() if h.ident in idents]
        assert sorted(found, key=lambda h: h.name) == sorted(handles, key=lambda h: h.name)
        stopped = stop_services()  # what `toolgrad sim down` does: this ledger's services only
        assert {h.ident for h in stopped} == idents
        assert not labelled_containers() & idents
    finally:
        stop_services(handles)


@docker_tier
@pytest.mark.usefixtures("no_new_containers")
def test_port_already_taken_is_a_clear_error_and_leaves_nothing() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        taken = blocker.getsockname()[1]
        # museum's port is taken: petstore starts first and must be removed again
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{taken} is already in use") as info:
            start_services(list(ENVS), backend="docker", port_base=taken - 1, image=IMAGE)
    assert info.value.service == "museum"
    assert Ledger().handles() == []


@docker_tier
@pytest.mark.usefixtures("no_new_containers")
def test_container_dying_at_start_names_the_service_and_shows_its_log() -> None:
    with pytest.raises(ServiceStartError) as info:
        start_services(["petstore", "no-such-env"], backend="docker", image=IMAGE, timeout=60)
    error = info.value
    assert error.service == "no-such-env"
    assert "exited with code" in error.reason
    assert any("no-such-env" in line for line in error.log_tail), error.log_tail
    assert isinstance(error, SimulatorError)


@docker_tier
def test_missing_image_is_a_clear_error() -> None:
    with pytest.raises(ImageMissingError, match="toolgrad-sim:no-such-tag is not in the Docker engine"):
        start_services(["petstore"], backend="docker", image="toolgrad-sim:no-such-tag")


def test_engine_not_running_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Needs no engine: DOCKER_HOST names a unix socket nobody listens on.
    dead = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(dead))  # exists, but never listens
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dead}")
    with pytest.raises(EngineUnavailableError, match="cannot reach the Docker engine at unix://") as info:
        start_services(["petstore"], backend="docker", port_base=free_port())
    assert "fix:" in str(info.value)
    assert isinstance(info.value, SimulatorError)
    # status and down keep working without an engine (nothing recorded for docker)
    assert [s for s in services_status() if s.handle.backend == "docker"] == []

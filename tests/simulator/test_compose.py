"""`toolgrad sim compose`: the compose file's text, and what the docker backend asks the engine
for (no engine needed; the docker tier runs both)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from simulator.cli.sandbox import sandbox_app
from simulator.containers.compose import (
    HEALTH_TEST,
    ComposePlan,
    compose_document,
    compose_mount,
    render_compose,
    service_urls,
)
from simulator.environments.environment import ENVS_DIR_VARIABLE, shipped_root
from simulator.sandboxes.backends.base import BackendError, ServiceRequest
from simulator.sandboxes.backends.docker import DockerBackend
from simulator.sandboxes.backends.mounts import EnvMount

ENVS = ("petstore", "crm")


def test_mcp_adds_one_streamable_http_service_per_environment() -> None:
    plan = ComposePlan(envs=ENVS, image="toolgrad-sim:test", port_base=9000, seed=3, mcp=True)
    services = compose_document(plan)["services"]
    assert list(services) == ["petstore", "crm", "petstore-mcp", "crm-mcp"]
    mcp = services["crm-mcp"]
    assert mcp["entrypoint"] == ["toolgrad", "sim", "mcp", "crm", "--transport", "http", "--host", "0.0.0.0",
                                 "--port", "8000", "--seed", "3"]
    assert mcp["ports"] == ["127.0.0.1:9101:8000"]  # loopback only, PORT_BASE + 100 + i
    assert mcp["healthcheck"]["test"] == HEALTH_TEST  # the MCP server answers /_sim/health too
    assert mcp["read_only"] is True and mcp["labels"]["toolgrad.env"] == "crm-mcp"
    assert "entrypoint" not in services["crm"]
    assert service_urls(plan) == {
        "petstore": "http://127.0.0.1:9000", "crm": "http://127.0.0.1:9001",
        "petstore-mcp": "http://127.0.0.1:9100/mcp", "crm-mcp": "http://127.0.0.1:9101/mcp",
    }  # fmt: skip
    assert render_compose(plan) == render_compose(plan)
    without = compose_document(ComposePlan(envs=ENVS, image="toolgrad-sim:test", port_base=9000, seed=3))
    assert list(without["services"]) == ["petstore", "crm"]


def test_mcp_ports_that_overlap_the_services_are_refused() -> None:
    plan = ComposePlan(envs=ENVS, image="toolgrad-sim:test", port_base=9000, mcp=True, mcp_port_base=9001)
    with pytest.raises(BackendError, match="MCP ports 9001-9002 overlap the services' ports 9000-9001"):
        compose_document(plan)


def test_cli_writes_and_names_the_mcp_endpoints(tmp_path: Path) -> None:
    out = tmp_path / "docker-compose.yml"
    result = CliRunner().invoke(sandbox_app, ["compose", *ENVS, "--mcp", "--mcp-port-base", "9500", "--no-build",
                                              "-o", str(out), "--image", "toolgrad-sim:test"])
    assert result.exit_code == 0, result.output
    assert "petstore-mcp: http://127.0.0.1:9500/mcp" in result.output
    document = yaml.safe_load(out.read_text())
    assert document["services"]["crm-mcp"]["ports"] == ["127.0.0.1:9501:8000"]
    clash = CliRunner().invoke(sandbox_app, ["compose", *ENVS, "--mcp", "--mcp-port-base", "8001", "--no-build",
                                             "-o", str(out)])
    assert clash.exit_code == 2 and "overlap" in clash.output


# --- environments of your own: mounted read-only ------------------------------------------------


def _my_env(root: Path) -> tuple[Path, Path]:
    """An environment folder (my-env, named after its folder) and a bare spec file in a folder of its own."""
    folder = root / "my-env"
    shutil.copytree(shipped_root() / "petstore", folder)
    (folder / "env.yaml").write_text("seed: 0\n")
    spec = root / "specs" / "tictactoe.yaml"
    spec.parent.mkdir()
    shutil.copy(shipped_root() / "tictactoe" / "openapi.yaml", spec)
    return folder, spec


def _compose(*args: str) -> Result:
    return CliRunner().invoke(sandbox_app, ["compose", *args, "--no-build", "--no-pin", "--image", "toolgrad-sim:test"])


def test_a_folder_and_a_spec_file_are_mounted_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENVS_DIR_VARIABLE, raising=False)
    folder, spec = _my_env(tmp_path)
    out = tmp_path / "out" / "docker-compose.yml"
    result = _compose("petstore", str(folder), str(spec), "--mcp", "-o", str(out))
    assert result.exit_code == 0, result.output
    services = yaml.safe_load(out.read_text())["services"]
    assert list(services) == ["petstore", "my-env", "tictactoe", "petstore-mcp", "my-env-mcp", "tictactoe-mcp"]
    assert "volumes" not in services["petstore"] and services["petstore"]["environment"]["TOOLGRAD_ENV"] == "petstore"
    # host paths relative to the compose file; the folder keeps its name inside (the env's name)
    assert services["my-env"]["volumes"] == ["../my-env:/opt/toolgrad/custom/my-env:ro"]
    assert services["my-env"]["environment"]["TOOLGRAD_ENV"] == "/opt/toolgrad/custom/my-env"
    assert services["tictactoe"]["volumes"] == ["../specs:/opt/toolgrad/custom/specs:ro"]
    assert services["tictactoe"]["environment"]["TOOLGRAD_ENV"] == "/opt/toolgrad/custom/specs/tictactoe.yaml"
    assert services["my-env-mcp"]["volumes"] == services["my-env"]["volumes"]
    assert services["my-env-mcp"]["entrypoint"][3] == "/opt/toolgrad/custom/my-env"
    assert services["my-env"]["read_only"] is True, "the mount does not loosen the hardening"
    text = out.read_text()
    assert "#   my-env: ../my-env -> /opt/toolgrad/custom/my-env\n" in text.split("version:")[0]
    assert str(tmp_path) not in text, "no absolute host path: the file moves with the folders"


def test_the_file_is_the_same_from_any_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENVS_DIR_VARIABLE, raising=False)
    _my_env(tmp_path)
    out = tmp_path / "docker-compose.yml"
    texts = []
    for cwd, prefix in ((tmp_path, "."), (tmp_path / "my-env", ".."), (tmp_path / "specs", "..")):
        monkeypatch.chdir(cwd)
        result = _compose(f"{prefix}/my-env", f"{prefix}/specs/tictactoe.yaml", "-o", str(out))
        assert result.exit_code == 0, result.output
        texts.append(out.read_bytes())
    assert texts[0] == texts[1] == texts[2]
    assert b"- ./my-env:/opt/toolgrad/custom/my-env:ro" in texts[0]


def test_a_folder_far_from_the_file_is_written_absolute() -> None:
    mount = EnvMount(Path("/srv/apis/my-env"), "/opt/toolgrad/custom/my-env", "/opt/toolgrad/custom/my-env")
    assert compose_mount(mount, Path("/home/me/stack")).source == "/srv/apis/my-env"
    assert compose_mount(mount, Path("/srv/stack")).source == "../apis/my-env"
    assert compose_mount(mount, Path("/srv/apis/my-env")).source == "."


def test_a_name_from_toolgrad_envs_dir_is_mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The image holds the shipped environments only: one found in $TOOLGRAD_ENVS_DIR is mounted."""
    _my_env(tmp_path)
    monkeypatch.setenv(ENVS_DIR_VARIABLE, str(tmp_path))
    out = tmp_path / "docker-compose.yml"
    assert _compose("my-env", "-o", str(out)).exit_code == 0
    assert yaml.safe_load(out.read_text())["services"]["my-env"]["volumes"] == ["./my-env:/opt/toolgrad/custom/my-env:ro"]


def test_an_unknown_name_is_refused_listing_the_shipped_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input: `no-such-env`, neither a path nor a shipped name (with and without the build section)."""
    monkeypatch.delenv(ENVS_DIR_VARIABLE, raising=False)
    out = tmp_path / "docker-compose.yml"
    root = Path(__file__).resolve().parents[2]
    for build in (["--build", "--project-dir", str(root)], ["--no-build"]):
        result = CliRunner().invoke(sandbox_app, ["compose", "petstore", "no-such-env", *build, "-o", str(out)])
        assert result.exit_code == 2, result.output
        message = " ".join(result.output.split())
        assert "unknown environment 'no-such-env'" in message and "petstore, tictactoe" in message, message
        assert "path of an environment folder or a spec file" in message, message
        assert "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "toolgrad-sim-context").exists(), "refused before writing anything"


def test_an_image_of_your_own_may_serve_names_we_do_not_know(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--no-build --image X`: X may hold environments this kit does not ship, so a name that is no
    path here is left to the image (no mount), not refused."""
    monkeypatch.delenv(ENVS_DIR_VARIABLE, raising=False)
    out = tmp_path / "docker-compose.yml"
    result = _compose("petstore", "their-env", "-o", str(out))
    assert result.exit_code == 0, result.output
    services = yaml.safe_load(out.read_text())["services"]
    assert set(services) == {"petstore", "their-env"}
    assert all("volumes" not in service for service in services.values())


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename onto the compose file fails: the error is clear and no `.docker-compose.yml.*.tmp` is left."""
    import os

    def refuse(*_: object) -> None:
        raise PermissionError("refused by the test")

    monkeypatch.setattr(os, "replace", refuse)
    result = _compose("petstore", "-o", str(tmp_path / "docker-compose.yml"))
    assert result.exit_code == 2, result.output
    assert "cannot write" in result.output and "refused by the test" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_path_docker_cannot_bind_is_refused(tmp_path: Path) -> None:
    """Bad input: a folder whose path holds ':' (docker's separator in a bind)."""
    folder = tmp_path / "my:env"
    shutil.copytree(shipped_root() / "petstore", folder)
    result = _compose(str(folder), "-o", str(tmp_path / "docker-compose.yml"))
    assert result.exit_code == 2 and "cannot mount" in result.output and "Traceback" not in result.output


def test_the_docker_backend_mounts_a_folder_read_only(tmp_path: Path) -> None:
    """What `sim up --backend docker ./my-env` asks the engine for (a fake client records it)."""
    folder, spec = _my_env(tmp_path)
    asked: list[dict[str, object]] = []

    class Stop(Exception):
        pass

    class Containers:
        def create(self, image: str, **kwargs: object) -> None:
            asked.append(kwargs)
            raise Stop

    client = SimpleNamespace(images=SimpleNamespace(get=lambda tag: None), containers=Containers())
    backend = DockerBackend(image="toolgrad-sim:test", client=client)  # type: ignore[arg-type]
    for env in (str(folder), str(spec), "petstore"):
        with pytest.raises(Stop):
            backend.start([ServiceRequest(env)], timeout=1, on_event=lambda event: None)
    folder_run, spec_run, shipped_run = asked
    assert folder_run["volumes"] == {str(folder.resolve()): {"bind": "/opt/toolgrad/custom/my-env", "mode": "ro"}}
    assert folder_run["environment"]["TOOLGRAD_ENV"] == "/opt/toolgrad/custom/my-env"  # type: ignore[index]
    assert spec_run["volumes"] == {str(spec.parent.resolve()): {"bind": "/opt/toolgrad/custom/specs", "mode": "ro"}}
    assert spec_run["environment"]["TOOLGRAD_ENV"] == "/opt/toolgrad/custom/specs/tictactoe.yaml"  # type: ignore[index]
    assert shipped_run["volumes"] is None and shipped_run["environment"]["TOOLGRAD_ENV"] == "petstore"  # type: ignore[index]
    assert folder_run["read_only"] is True

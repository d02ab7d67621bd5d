"""`toolgrad sim compose`: the compose file's text (no engine needed; the docker tier runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from simulator.cli.sandbox import sandbox_app
from simulator.containers.compose import (
    HEALTH_TEST,
    ComposePlan,
    compose_document,
    render_compose,
    service_urls,
)
from simulator.sandboxes.backends.base import BackendError

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

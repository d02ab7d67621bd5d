"""`toolgrad sim image`: a rebuild from the same sources is a cache hit; a Python mismatch is explained."""

from __future__ import annotations

from pathlib import Path

import pytest
from docker.client import from_env
from typer.testing import CliRunner

from simulator.cli.sandbox import sandbox_app
from simulator.containers import images
from tests.support.docker_tier import IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]


def _built_from() -> str:
    client = from_env()
    try:
        labels = client.images.get(IMAGE).labels
    finally:
        client.close()
    return str(labels["org.opencontainers.image.base.name"])


def test_image_records_its_provenance() -> None:
    client = from_env()
    try:
        config = client.images.get(IMAGE).attrs["Config"]
    finally:
        client.close()
    assert config["Labels"]["toolgrad.sim.python"] == images.python_version()
    assert config["User"] == "10001:10001"
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]
    assert config["Healthcheck"]["Test"][1] == "/opt/venv/bin/python"


def test_rebuild_with_the_same_base_succeeds_and_streams_its_log() -> None:
    result = CliRunner().invoke(sandbox_app, ["image", "--base", _built_from(), "--tag", IMAGE])
    assert result.exit_code == 0, result.output
    assert "Step 1/" in result.output
    assert f"image {IMAGE}" in result.output


def test_python_mismatch_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    real = images.build_args

    def claim_other_python(base: str | None, context: Path) -> dict[str, str]:
        return {**real(base, context), "WHEEL_PYTHON": "3.99"}

    monkeypatch.setattr(images, "build_args", claim_other_python)
    with pytest.raises(images.ImageBuildError) as info:
        images.build_image(base=_built_from(), tag="toolgrad-sim:test-python-mismatch")
    text = str(info.value)
    assert "wheelhouse was built for Python 3.99" in text
    assert "fix:" in text
    assert "    | " in text  # the last build log lines

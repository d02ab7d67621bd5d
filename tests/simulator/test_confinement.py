"""Spec loading as a hostile author would try it: references out of the spec's folder, devices,
huge files, YAML alias bombs and broken env.yaml values (each test names its bad input)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

import simulator.spec.loader as loader_module
from simulator.environments.environment import load_environment
from simulator.errors import SpecError
from simulator.spec.loader import load_spec

SECRET = "TOP-SECRET-VALUE"
TOOLGRAD = Path(sys.executable).with_name("toolgrad")


def spec_with_ref(ref: str) -> dict[str, object]:
    return {
        "openapi": "3.0.3", "info": {"title": "escape", "version": "1"},
        "paths": {"/things/{id}": {"get": {
            "operationId": "getThing",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": ref}}}}},
        }}},
    }


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """tmp/outside/secret.yaml next to tmp/env/ (the spec's folder)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.yaml"
    secret.write_text(yaml.safe_dump({"Thing": {"type": "object", "properties": {"x": {"const": SECRET}}}}))
    env = tmp_path / "env"
    env.mkdir()
    return env, secret


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file the loader opens."""
    opened: list[str] = []
    original = loader_module.read_regular_file

    def spy(path: str | Path, limit: int | None = None) -> bytes:
        opened.append(os.path.realpath(path))
        return original(path, limit)

    monkeypatch.setattr(loader_module, "read_regular_file", spy)
    return opened


@pytest.mark.parametrize("kind", ["relative", "absolute", "file-url"])
def test_a_ref_out_of_the_spec_folder_is_refused_unread(layout: tuple[Path, Path], reads: list[str], kind: str) -> None:
    env, secret = layout
    ref = {"relative": "../outside/secret.yaml#/Thing", "absolute": f"{secret}#/Thing",
           "file-url": f"file://{secret}#/Thing"}[kind]
    spec = env / "openapi.yaml"
    spec.write_text(yaml.safe_dump(spec_with_ref(ref)))  # bad input: a $ref leading out of env/
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert "outside the allowed folders" in str(caught.value) and str(secret) in str(caught.value)
    assert str(secret.resolve()) not in reads, "refused before it was opened"


def test_etc_passwd_is_not_read(tmp_path: Path, reads: list[str]) -> None:
    spec = tmp_path / "openapi.yaml"
    spec.write_text(yaml.safe_dump(spec_with_ref("/etc/passwd#/x")))  # bad input: a system file
    with pytest.raises(SpecError, match="/etc/passwd"):
        load_spec(spec)
    assert "/etc/passwd" not in reads


def test_a_symlink_cannot_lead_out(layout: tuple[Path, Path], reads: list[str]) -> None:
    env, secret = layout
    (env / "link.yaml").symlink_to(secret)  # bad input: a link inside the folder to a file outside
    spec = env / "openapi.yaml"
    spec.write_text(yaml.safe_dump(spec_with_ref("link.yaml#/Thing")))
    with pytest.raises(SpecError, match="outside the allowed folders"):
        load_spec(spec)
    assert str(secret.resolve()) not in reads


def test_an_allowed_root_lets_a_ref_through(layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    env, secret = layout
    spec = env / "openapi.yaml"
    spec.write_text(yaml.safe_dump(spec_with_ref("../outside/secret.yaml#/Thing")))
    monkeypatch.setenv("TOOLGRAD_SPEC_ROOTS", str(secret.parent))
    assert [op.operation_id for op in load_spec(spec).operations] == ["getThing"]


def test_env_yaml_spec_path_must_stay_inside(layout: tuple[Path, Path]) -> None:
    env, _secret = layout
    (env / "env.yaml").write_text("spec: ../outside/secret.yaml\n")  # bad input: spec: outside the folder
    with pytest.raises(SpecError, match="outside the allowed folders"):
        load_environment(env)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_not_a_spec(device: str) -> None:
    with pytest.raises(SpecError, match="not a regular file"):  # bad input: a device, endless bytes
        load_environment(device)


def test_a_spec_over_the_size_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_text(yaml.safe_dump(spec_with_ref("#/components/x")) + "#" * 5000)  # bad input: too large
    monkeypatch.setenv("TOOLGRAD_MAX_SPEC_BYTES", "4096")
    with pytest.raises(SpecError, match="more than the 4,096 allowed"):
        load_spec(spec)


BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
openapi: 3.0.3
"""
MERGE_BOMB = "a0: &a0 {k: 1}\n" + "".join(
    f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], k{i}: 1}}\n" for i in range(1, 40)) + "openapi: 3.0.3\n"


@pytest.mark.parametrize("text", [BOMB, MERGE_BOMB], ids=["alias-bomb", "merge-key-bomb"])
def test_a_yaml_alias_bomb_is_refused_within_2_s_and_100_mb(tmp_path: Path, text: str) -> None:
    spec = tmp_path / "bomb.yaml"
    spec.write_text(text)  # bad input: under 1 KB that expands to ~10^9 nodes
    assert spec.stat().st_size < 2000
    tracemalloc.start()
    started = time.process_time()
    try:
        with pytest.raises(SpecError, match="aliases"):
            load_spec(spec)
        cpu_seconds = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a safety bound, not a speed target: expanding the bomb takes minutes and gigabytes
    assert cpu_seconds < 2.0 and peak < 100 * 1024 * 1024, (cpu_seconds, peak)


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "loop.yaml"
    spec.write_text("openapi: 3.0.3\nx: &x [*x]\n")  # bad input: an alias inside itself
    with pytest.raises(SpecError):
        load_spec(spec)


def test_a_few_aliases_still_load(tmp_path: Path) -> None:
    document = spec_with_ref("#/components/schemas/Thing")
    text = yaml.safe_dump(document) + "components:\n  schemas:\n    Thing: &thing {type: object}\n    Other: *thing\n"
    spec = tmp_path / "ok.yaml"
    spec.write_text(text)
    assert len(load_spec(spec).operations) == 1


@pytest.mark.parametrize("epoch", ["not a date", "2025-13-45"])
def test_an_invalid_epoch_is_one_line_exit_2(tmp_path: Path, epoch: str) -> None:
    env = tmp_path / "env"
    env.mkdir()
    (env / "openapi.yaml").write_text(yaml.safe_dump(spec_with_ref("#/x")))
    (env / "env.yaml").write_text(f"epoch: '{epoch}'\n")  # bad input: an epoch that is no date
    result = subprocess.run([str(TOOLGRAD), "sim", "check", str(env)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "epoch" in result.stdout + result.stderr and "Traceback" not in result.stderr

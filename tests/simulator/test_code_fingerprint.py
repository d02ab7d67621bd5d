"""The simulator code digest in every environment fingerprint covers all of the simulator's
modules: a dataset made by other simulator code (a handler, the value generator) must show up
as a fingerprint mismatch, not as responses that no longer replay for no stated reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import simulator
from simulator.environments.environment import code_sha256, sources_sha256

PACKAGE = Path(simulator.__file__).resolve().parent


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "simulator"
    shutil.copytree(PACKAGE, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_fingerprint_digest_is_of_the_whole_simulator_package() -> None:
    assert code_sha256() == sources_sha256(PACKAGE)


def test_a_change_to_any_module_changes_the_digest(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    before = sources_sha256(copy)
    assert before == sources_sha256(PACKAGE)  # the copy is the package, byte for byte
    # outside simulator/environments, which was all the digest covered after the re-lay of issue 12
    for module in ("service/handlers.py", "datagen/walk.py", "state/store.py", "canonical.py"):
        path = copy / module
        original = path.read_bytes()
        path.write_bytes(original + b"\n# one more line\n")
        assert sources_sha256(copy) != before, module
        path.write_bytes(original)
    assert sources_sha256(copy) == before


def test_environment_data_and_bytecode_are_not_code(tmp_path: Path) -> None:
    """The shipped environments are data (each fingerprint has its spec's own digest), and
    compiled bytecode follows the sources."""
    copy = _copy(tmp_path)
    before = sources_sha256(copy)
    envs = copy / "_envs"
    if envs.is_symlink():  # a checkout links the repository's envs/: do not write through it
        envs.unlink()
        envs.mkdir()
    (envs / "stray").mkdir(parents=True, exist_ok=True)
    (envs / "stray" / "hook.py").write_text("x = 1\n")
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "canonical.cpython-311.pyc").write_bytes(b"not source")
    assert sources_sha256(copy) == before

"""The layer rule (ARCHITECTURE.md): simulator imports nothing of ours; toolgrad may import
simulator; benchmarks may import both; nothing imports benchmarks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"simulator": {"simulator"}, "toolgrad": {"simulator", "toolgrad"},
           "benchmarks": {"simulator", "toolgrad", "benchmarks"}}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    offenders = {str(f.relative_to(ROOT)): sorted(imported_packages(f) - ALLOWED[package]) for f in files}
    offenders = {f: bad for f, bad in offenders.items() if bad}
    assert not offenders, f"{package} imports a higher layer: {offenders}"


def test_data_folders_are_not_packages() -> None:
    # envs/ and docker/ must not shadow the `envs` and `docker` packages on sys.path
    for folder in ("envs", "docker"):
        assert not (ROOT / folder / "__init__.py").exists(), f"{folder}/__init__.py must not exist"

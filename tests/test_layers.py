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


# Inside each package, its parts from the bottom up: a part may import only parts listed before
# it (and itself). Imports under ``if TYPE_CHECKING:`` count too: a type is a dependency.
ORDER = {
    "simulator": ["errors", "messages", "canonical", "spec", "datagen", "environments", "state", "service",
                  "sandboxes", "tools", "serving", "containers", "cli"],
    "toolgrad": ["agent_prompt", "json_values", "sampling", "records", "events", "toolbox", "backends", "validity", "loop",
                 "settings", "fork_server", "executors", "policies", "dataset", "exports", "train", "cli", "__main__"],
    "benchmarks": ["certify", "evaluate", "baseline", "perf", "cli"],
}


def part_of(package: str, path: Path) -> str:
    first = path.relative_to(ROOT / package).parts[0]
    return first.removesuffix(".py")


def imported_parts(package: str, path: Path) -> set[str]:
    """The parts of ``package`` that ``path`` imports (absolute or relative)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = [package, *path.relative_to(ROOT / package).with_suffix("").parts]
    base = here[:-1]  # the module's package (an __init__'s own package is one up: same parts)
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                module = ".".join([*anchor, *([node.module] if node.module else [])])
                names = [module] if node.module else [f"{module}.{alias.name}" for alias in node.names]
            elif node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == package and len(parts) > 1 and parts[1] in ORDER[package]:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", sorted(ORDER))
def test_parts_of_a_package_import_only_parts_below(package: str) -> None:
    order = ORDER[package]
    files = [f for f in sorted((ROOT / package).rglob("*.py")) if f.relative_to(ROOT / package).parts[0] != "__init__.py"]
    unknown = sorted({part_of(package, f) for f in files} - set(order))
    assert not unknown, f"{package}: parts missing from ORDER (place them in the layer order): {unknown}"
    offenders = {}
    for f in files:
        rank = order.index(part_of(package, f))
        above = sorted(p for p in imported_parts(package, f) if order.index(p) > rank)
        if above:
            offenders[str(f.relative_to(ROOT))] = above
    assert not offenders, f"{package}: a part imports a part above it ({' < '.join(order)}): {offenders}"

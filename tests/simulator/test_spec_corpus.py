"""Every real spec in ../shared/specs, every ToolBench tool file in ../shared/toolbench and every
shipped environment under envs/ loads, and every schema it yields compiles and is self-contained."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest
import yaml

from simulator.errors import SpecError
from simulator.spec.loader import load_spec
from simulator.spec.model import Spec

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SPECS = SHARED / "specs"
TOOLBENCH = SHARED / "toolbench"
SPEC_NAMES = ("openapi.yaml", "openapi.yml", "openapi.json", "swagger.yaml", "swagger.json", "toolbench.json")
# operations a corpus spec is known to leave out, by file name (none today)
EXPECTED_SKIPS: dict[str, int] = {}


def _params(paths: list[Path], missing: str) -> list[Any]:
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(reason=missing), id="absent")]
    return [pytest.param(p, id=p.name if p.parent.name in ("specs", "toolbench") else p.parent.name) for p in paths]


def _corpus_specs() -> list[Path]:
    return sorted(p for p in SPECS.glob("*") if p.suffix in (".json", ".yaml", ".yml")) if SPECS.is_dir() else []


def _tool_files() -> list[Path]:
    return sorted(p for p in TOOLBENCH.glob("*.json") if not p.name.startswith("query__")) if TOOLBENCH.is_dir() else []


def _env_specs() -> list[Path]:
    found = []
    for env_file in sorted((REPO / "envs").glob("*/env.yaml")):
        data = yaml.safe_load(env_file.read_text(encoding="utf-8")) or {}
        named = env_file.parent / str(data["spec"]) if isinstance(data, dict) and "spec" in data else None
        candidates = [named] if named else [env_file.parent / n for n in SPEC_NAMES]
        found.extend([p for p in candidates if p is not None and p.is_file()][:1])
    return found


def schemas_of(spec: Spec) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, schema) for every schema in the model."""
    for op in spec.operations:
        for p in op.parameters:
            yield f"{op.operation_id} {p.location} parameter {p.name}", p.schema
        if op.request_body:
            for media, schema in op.request_body.content.items():
                yield f"{op.operation_id} request body {media}", schema
        for r in op.responses:
            for media, schema in r.content.items():
                yield f"{op.operation_id} {r.status} {media}", schema
            for name, (_, schema) in r.headers.items():
                yield f"{op.operation_id} {r.status} header {name}", schema


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for key, value in node.items():
            if key not in ("enum", "const", "default", "examples"):
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _compile(schema: dict[str, Any], label: str) -> None:
    try:
        jsonschema_rs.validator_for(schema)
    except jsonschema_rs.ValidationError as exc:
        pytest.fail(f"{label}: the schema does not compile: {exc}")


def check_schemas(spec: Spec, label: str) -> int:
    """Every schema compiles and every ``$ref`` lands in its own ``$defs``.

    Roots sharing one ``$defs`` object (the loader shares them) are compiled together, as the
    branches of one ``anyOf`` over those ``$defs``: what compiles there compiles alone, and a
    large spec checks in seconds instead of minutes. A group that fails is compiled schema by
    schema to name the culprit.
    """
    groups: dict[int, tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]] = {}
    count = 0
    for where, schema in schemas_of(spec):
        defs = schema.get("$defs", {})
        for ref in _refs(schema):
            assert ref.startswith("#/$defs/") and ref[len("#/$defs/"):] in defs, f"{label}: {where}: {ref}"
        root = {k: v for k, v in schema.items() if k != "$defs"}
        groups.setdefault(id(defs), (defs, []))[1].append((where, root))
        count += 1
    for defs, roots in groups.values():
        try:
            jsonschema_rs.validator_for({"$defs": defs, "anyOf": [root for _, root in roots]})
        except jsonschema_rs.ValidationError:
            for where, root in roots:
                _compile({**root, "$defs": defs} if defs else root, f"{label}: {where}")
            raise
    return count


@pytest.mark.parametrize("path", _params(_corpus_specs(), f"{SPECS} is absent"))
def test_corpus_spec_loads_and_schemas_compile(path: Path) -> None:
    spec = load_spec(path)
    assert spec.operations, f"{path.name}: no operations"
    assert len(spec.skipped) == EXPECTED_SKIPS.get(path.name, 0), (
        f"{path.name}: unexpected skips: {[(s.method, s.path, s.reason) for s in spec.skipped][:5]}"
    )
    assert len({op.operation_id for op in spec.operations}) == len(spec.operations), f"{path.name}: duplicate ids"
    assert check_schemas(spec, path.name) > 0


@pytest.mark.parametrize("path", _params(_tool_files(), f"{TOOLBENCH} is absent"))
def test_toolbench_tool_file_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.source_format == "toolbench" and spec.operations and not spec.skipped, path.name
    assert all(op.path.count("/") == 2 for op in spec.operations), f"{path.name}: /<tool>/<api> paths"
    check_schemas(spec, path.name)


@pytest.mark.parametrize("path", _params(sorted(TOOLBENCH.glob("query__*.json")) if TOOLBENCH.is_dir() else [],
                                         f"{TOOLBENCH} is absent"))
def test_toolbench_query_file_is_refused(path: Path) -> None:
    with pytest.raises(SpecError, match="ToolBench query file"):
        load_spec(path)


@pytest.mark.parametrize("path", _params(_env_specs(), "no environments under envs/ yet"))
def test_environment_spec_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.operations and not spec.skipped, f"{path}: {spec.skipped[:3]}"
    check_schemas(spec, str(path.relative_to(REPO)))


def test_largest_spec_loads_quickly() -> None:
    github = SPECS / "github-api-v30.json"
    if not github.is_file():
        pytest.skip(f"{github} is absent")
    started = time.perf_counter()
    spec = load_spec(github)
    elapsed = time.perf_counter() - started
    assert len(spec.operations) == 845, "github-api-v30.json has 845 operations"
    assert elapsed < 20, f"github-api-v30.json took {elapsed:.1f}s (about 0.5 s expected)"


_FINGERPRINT = """
import hashlib, sys, orjson
from simulator.spec.loader import load_spec
for name in sys.argv[1:]:
    print(name, hashlib.sha256(orjson.dumps(load_spec(name), default=str)).hexdigest())
"""


@pytest.mark.slow
def test_corpus_is_identical_across_hash_seeds() -> None:
    paths = [str(p) for p in _corpus_specs() + _tool_files()]
    if not paths:
        pytest.skip(f"{SPECS} is absent")
    runs = [
        subprocess.run([sys.executable, "-c", _FINGERPRINT, *paths], capture_output=True, text=True, check=True,
                       cwd=REPO, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("0", "977")
    ]
    assert runs[0] == runs[1], "every corpus spec loaded under PYTHONHASHSEED 0 and 977"
    digest = hashlib.sha256(orjson.dumps(load_spec(paths[0]), default=str)).hexdigest()
    assert f"{paths[0]} {digest}" in runs[0], "and the same in this process"


@pytest.mark.slow
@pytest.mark.parametrize("path", _params(_corpus_specs(), f"{SPECS} is absent"))
def test_every_collection_read_answers_a_body_its_schema_accepts(path: Path) -> None:
    """Every GET without path parameters, in a fresh session: a 2xx JSON body is valid for the
    schema the spec documents for it. Before stop 31, six were not (stripe's customers,
    payment and setup intents, top-ups; otoroshi's services and auth modules): hiding a
    polymorphic item's secrets judged it by its first branch and dropped a ``client_secret``
    the item's own branch requires."""
    from simulator.environments.environment import load_environment
    from simulator.messages import SimRequest
    from simulator.service.simulator import Simulator

    env = load_environment(path)
    sim = Simulator(env)
    checked, invalid = 0, []
    for op in env.spec.operations:
        if op.method != "GET" or "{" in op.path:
            continue
        response = sim.handle(SimRequest("GET", op.path, (), (("authorization", "Bearer x"),)), "s")
        media, schema = sim.handlers.media(op, response.status)
        if response.status >= 300 or not response.body or schema is None or "json" not in (media or ""):
            continue
        checked += 1
        if not sim.shaper.is_valid(schema, schema, orjson.loads(response.body)):
            invalid.append(op.operation_id)
    assert not invalid, f"{path.name}: {len(invalid)} of {checked} answered bodies their schemas refuse: {invalid}"

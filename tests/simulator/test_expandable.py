"""Stripe's expandable fields (``x-expansionResources``): an id unless a request asks to expand."""

from __future__ import annotations

import json
from pathlib import Path

from simulator.datagen.exactness import exact_cost
from simulator.datagen.generate import compile_schema
from simulator.environments.environment import load_environment
from simulator.spec.jsonschema.keywords import EXPANDABLE

CUSTOMER = {"type": "object", "required": ["id", "name"],
            "properties": {"id": {"type": "string", "maxLength": 5000}, "name": {"type": "string"}}}
CHARGE = {"type": "object", "required": ["id", "customer"], "properties": {
    "id": {"type": "string", "maxLength": 5000},
    "customer": {"anyOf": [{"maxLength": 5000, "type": "string"}, {"$ref": "#/components/schemas/customer"}],
                 "nullable": True,
                 "x-expansionResources": {"oneOf": [{"$ref": "#/components/schemas/customer"}]}}}}


def _spec(tmp_path: Path) -> Path:
    spec = {"openapi": "3.0.0", "info": {"title": "charges", "version": "1"}, "paths": {
        "/v1/charges/{charge}": {"get": {"operationId": "GetCharge", "parameters": [
            {"name": "charge", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/charge"}}}}}}}},
        "components": {"schemas": {"charge": CHARGE, "customer": CUSTOMER}}}
    path = tmp_path / "charges.json"
    path.write_text(json.dumps(spec))
    return path


def test_an_expandable_field_is_marked_and_generated_as_its_id(tmp_path: Path) -> None:
    env = load_environment(str(_spec(tmp_path)))
    schema = env.spec.operation("GetCharge").responses[0].content["application/json"]
    charge = schema["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    inner = charge["properties"]["customer"]["anyOf"][0]  # nullable wraps it: anyOf [the field, null]
    assert inner[EXPANDABLE] is True and "x-expansionResources" not in json.dumps(schema)
    compiled = compile_schema(schema)
    values = [compiled.generate(f"s{i}", complete=True)["customer"] for i in range(60)]
    assert all(value is None or isinstance(value, str) for value in values)  # never the expanded object
    assert any(isinstance(value, str) for value in values)
    # a fixed order with an exact first branch: the field is exact (the walk may skip it when asked)
    assert exact_cost(compiled._plan, charge["properties"]["customer"], {}) == 2


def test_without_the_extension_the_walk_still_expands_some(tmp_path: Path) -> None:
    # the same field without x-expansionResources: a plain anyOf, whose branches the seed orders
    plain = json.loads(json.dumps(CHARGE))
    del plain["properties"]["customer"]["x-expansionResources"]
    path = _spec(tmp_path)
    spec = json.loads(path.read_text())
    spec["components"]["schemas"]["charge"] = plain
    path.write_text(json.dumps(spec))
    schema = load_environment(str(path)).spec.operation("GetCharge").responses[0].content["application/json"]
    assert EXPANDABLE not in json.dumps(schema)
    compiled = compile_schema(schema)
    values = [compiled.generate(f"s{i}", complete=True)["customer"] for i in range(60)]
    assert any(isinstance(value, dict) for value in values)

"""simulator.datagen: ``CompiledSchema.generate(elide=...)`` leaves a root property out of the walk
only where that changes nothing else, and the shaper's answers stay byte for byte the same."""

from __future__ import annotations

import string
from typing import Any

import jsonschema_rs
import orjson
import pytest

from simulator.datagen.exactness import SAFE_FORMATS
from simulator.datagen.generate import DEFAULT_EPOCH, ELIDED, CompiledSchema, compile_schema
from simulator.datagen.values import FORMAT_MAKERS, SeededRandom
from simulator.environments.environment import load_environment, shipped_environments
from simulator.spec.navigation import object_properties, sub_schema

SEEDS = [f"elide-{i}" for i in range(25)]

RECORD = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "email": {"type": "string", "format": "email", "minLength": 1},
        "size": {"type": "integer", "minimum": 1, "maximum": 9},
        "tags": {"type": "array", "items": {"type": "string"}},
        "value": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]},
    },
}
WRAPPER = {
    "type": "object",
    "required": ["data", "total"],
    "properties": {"page": {"type": "integer"}, "data": {"type": "array", "items": RECORD},
                   "total": {"type": "integer", "minimum": 0}, "next": {"type": "string", "format": "uri"}},
}


def _rest(value: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in value.items() if k != key]


@pytest.mark.parametrize("complete", [True, False])
def test_an_exact_property_comes_back_elided_in_its_place_and_the_rest_unchanged(complete: bool) -> None:
    compiled = CompiledSchema(WRAPPER)
    for seed in SEEDS:
        full = compiled.generate(seed, name="items", complete=complete)
        elided = compiled.generate(seed, name="items", complete=complete, elide=["data"])
        assert elided["data"] is ELIDED
        assert list(elided) == list(full)  # the key keeps its place
        assert _rest(elided, "data") == _rest(full, "data")


def test_a_property_the_walk_might_fail_on_is_generated_anyway() -> None:
    # a pattern is met by trying strings: not exact, so "data" is walked as before
    schema = {**WRAPPER, "properties": {**WRAPPER["properties"],
                                        "data": {"type": "array", "items": {"type": "string", "pattern": "^a+$"}}}}
    compiled = CompiledSchema(schema)
    for seed in SEEDS[:5]:
        assert compiled.generate(seed, elide=["data"]) == compiled.generate(seed)


def test_a_root_with_composition_elides_nothing() -> None:
    # oneOf at the root: which branch wins depends on the whole value
    schema = {"oneOf": [WRAPPER, {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}]}
    compiled = CompiledSchema(schema)
    for seed in SEEDS[:5]:
        assert compiled.generate(seed, elide=["data"]) == compiled.generate(seed)


def test_a_spending_property_stays_when_the_rest_of_the_root_composes_too() -> None:
    # "data" takes anyOf steps from the budget; "other" composes as well, so skipping "data"
    # could change when "other" runs out: not elided
    schema = {"type": "object", "properties": {
        "data": {"type": "array", "items": RECORD},
        "other": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}
    compiled = CompiledSchema(schema)
    for seed in SEEDS[:5]:
        assert ELIDED not in compiled.generate(seed, complete=True, elide=["data"]).values()
    # without "other" it is elided
    plain = CompiledSchema({"type": "object", "properties": {"data": {"type": "array", "items": RECORD}}})
    assert plain.generate("s", complete=True, elide=["data"]) == {"data": ELIDED}


@pytest.mark.parametrize("form", sorted(SAFE_FORMATS))
def test_each_safe_format_maker_gives_valid_strings_of_three_characters_or_more(form: str) -> None:
    validator = jsonschema_rs.validator_for({"type": "string", "format": form}, validate_formats=True)
    for seed in range(300):
        text = FORMAT_MAKERS[form](SeededRandom(seed * 7919 + 1), DEFAULT_EPOCH)
        assert len(text) >= 3 and validator.is_valid(text), (form, text)


def _response_schemas(env: str) -> list[dict[str, Any]]:
    environment = load_environment(env)
    found = []
    for op in environment.spec.operations:
        for response in op.responses:
            for schema in response.content.values():
                if isinstance(schema, dict) and schema:
                    found.append(sub_schema(schema, schema))
    return found


@pytest.mark.parametrize("env", shipped_environments())
def test_every_shipped_response_schema_gives_the_same_bytes_around_what_it_elides(env: str) -> None:
    """For every top-level property of every response schema of the shipped environments: the
    value generated with it elided equals the full one everywhere else, byte for byte."""
    checked = 0
    for schema in _response_schemas(env):
        compiled = compile_schema(schema)
        for key in object_properties(schema, schema):
            for seed in SEEDS[:4]:
                try:
                    full = compiled.generate(seed, name="resource", complete=True)
                except ValueError as error:
                    with pytest.raises(type(error)):
                        compiled.generate(seed, name="resource", complete=True, elide=[key])
                    continue
                elided = compiled.generate(seed, name="resource", complete=True, elide=[key])
                if not isinstance(full, dict):
                    assert elided == full
                    continue
                assert list(elided) == list(full)
                assert orjson.dumps(_rest(elided, key)) == orjson.dumps(_rest(full, key))
                checked += elided.get(key) is ELIDED
    assert checked or env != "crm", "crm: its list wrappers elided nothing"  # the case this is for


def test_property_names_are_plain_ascii_in_the_fixture() -> None:
    # the fixture above names its properties in plain ASCII (no JSON-pointer escaping involved)
    assert all(set(k) <= set(string.ascii_lowercase) for k in WRAPPER["properties"])

"""The simulator's hot-path precomputations give what the plain computation gives: the walk's
per-node object facts (``ObjectShape``) and an echo's regeneration that skips the members its
generated hint keeps (``Shaper._conform_object``)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from simulator.canonical import escape_token
from simulator.datagen.containers import ObjectShape, search_pattern
from simulator.datagen.exactness import RootElision
from simulator.datagen.generate import ELIDED, compile_schema
from simulator.datagen.values import SeededRandom
from simulator.environments.environment import load_environment
from simulator.service import shaping
from simulator.service.handlers import choose_media
from simulator.service.shaping import Shaper
from simulator.service.simulator import Simulator
from simulator.service.validation import compile_schema as compile_validator
from simulator.spec.navigation import array_items, deref, object_properties, primary_type, required_properties

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
# keys that need escaping in a pointer, and patternProperties that match some of them
ODD = {
    "type": "object",
    "required": ["a/b", 7, "x~1"],  # a non-string required name is ignored
    "properties": {"a/b": {"type": "string"}, "x~1": {"type": "integer"}, "x-ray": {"type": "boolean"},
                   "plain": {"type": "string"}},
    "patternProperties": {"^x": {"type": ["integer", "boolean"]}, "[": {"type": "string"}},  # "[" won't compile
    "additionalProperties": {"type": "string"},
}


def _object_nodes(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if isinstance(value.get("properties"), dict):
            yield value
        for member in value.values():
            yield from _object_nodes(member)
    elif isinstance(value, list):
        for member in value:
            yield from _object_nodes(member)


# the same, as a schema the validator accepts
WALKED = {**ODD, "required": ["a/b", "x~1"], "patternProperties": {"^x": {"type": ["integer", "boolean"]}}}


@pytest.mark.parametrize("node", [ODD, WALKED, {"type": "object"}, {"properties": {}}])
def test_an_object_shape_is_what_the_walk_read_of_the_node_each_time(node: dict[str, Any]) -> None:
    _same_as_inline(node)


def test_object_shapes_of_every_shipped_schema_node() -> None:
    sim = Simulator(load_environment("crm"))
    count = 0
    for op in sim.env.spec.operations:
        for response in op.responses:
            for media in response.content.values() if isinstance(response.content, dict) else ():
                for node in _object_nodes(getattr(media, "schema", media)):
                    _same_as_inline(node)
                    count += 1
    assert count > 50


def _same_as_inline(node: dict[str, Any]) -> None:
    """The shape's fields against the computation object_value made inline before."""
    shape = ObjectShape(node)
    properties = node.get("properties") or {}
    patterns = node.get("patternProperties") or {}
    required = [key for key in node.get("required", ()) if isinstance(key, str)]
    assert shape.properties is properties or shape.properties == properties == {}
    assert shape.required == required and shape.required_set == set(required)
    assert shape.patterns == patterns and shape.additional == node.get("additionalProperties", True)
    assert shape.members == [(key, escape_token(key), schema, [patterns[p] for p in patterns if search_pattern(p, key)])
                             for key, schema in properties.items()]


def test_the_walk_with_its_shapes_gives_the_same_values_on_a_fresh_plan() -> None:
    # a shape is made on a node's first visit and read on every later one: values from a plan
    # that has walked many seeds equal those from plans that walk each seed first
    warm = compile_schema(WALKED)
    values = [warm.generate(f"s{i}", name="thing") for i in range(40)]
    for i, value in enumerate(values):
        fresh = type(warm)(orjson.loads(orjson.dumps(WALKED)))
        assert orjson.dumps(fresh.generate(f"s{i}", name="thing")) == orjson.dumps(value)
    assert any("x-ray" in value for value in values) and all("a/b" in value for value in values)


ENVELOPE = {
    "$ref": "#/$defs/Page",
    "$defs": {
        "Page": {"type": "object", "required": ["data"], "properties": {
            "data": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}}}},
            "links": {"$ref": "#/$defs/Links"},
            "meta": {"type": "object", "properties": {
                "items_on_page": {"type": "integer"},
                "cursors": {"type": "object", "properties": {
                    "previous": {"type": ["string", "null"]}, "current": {"type": ["string", "null"]},
                    "next": {"type": ["string", "null"]}, "limit": {"type": "integer"}}}}},
            "status": {"type": "string"}}},
        "Links": {"type": "object", "properties": {
            "previous": {"type": ["string", "null"]}, "current": {"type": "string"},
            "next": {"type": ["string", "null"]}, "limit": {"type": "integer", "minimum": 1}}},
    },
}


def _conformed(monkeypatch: pytest.MonkeyPatch, skip_max: int, seeds: int) -> list[bytes]:
    monkeypatch.setattr(shaping, "_ECHO_SKIP_MAX", skip_max)
    shaper = Shaper(EPOCH)
    bodies = []
    for i in range(seeds):
        inputs = {"limit": 1 + i % 5, "cursor": f"c{i}"} if i % 3 else {"limit": "not an integer"}
        hint = {"data": [{"id": f"r{i}"}], "status": "ok"}
        bodies.append(orjson.dumps(shaper.conform(ENVELOPE, ENVELOPE, hint, f"list-{i}", inputs=inputs)))
    return bodies


def test_an_echo_that_skips_its_kept_members_gives_the_bodies_of_one_that_walks_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    skipping = _conformed(monkeypatch, shaping._ECHO_SKIP_MAX, 60)
    walking = _conformed(monkeypatch, -1, 60)  # never skips a kept scalar: the walk as it was
    assert skipping == walking
    validator = compile_validator(ENVELOPE)
    assert all(validator.is_valid(orjson.loads(body)) for body in skipping)
    echoed = [orjson.loads(body) for body in skipping]
    assert any(body.get("links", {}).get("limit") == body["meta"]["cursors"].get("limit")
               for body in echoed if "cursors" in body.get("meta", {}))


def test_the_shaper_asks_each_navigation_helper_once_per_node_and_gets_what_it_gives() -> None:
    sim = Simulator(load_environment("crm"))
    shaper = sim.shaper
    roots = [schema for op in sim.env.spec.operations for response in op.responses
             for _, schema in [choose_media(response)] if schema]
    assert len(roots) > 20
    helpers = (deref, object_properties, array_items, required_properties, shaping._primary_type)
    for root in roots:
        for node in [root, *_object_nodes(root), *_object_nodes(root.get("$defs", {}))]:
            for helper in helpers:
                first = shaper._of(helper, root, node)
                assert first == helper(root, node)
                assert shaper._of(helper, root, node) is first  # remembered
            assert shaping._primary_type(root, node) == primary_type(root, deref(root, node))


def test_the_validator_for_elided_members_is_the_one_a_fresh_elision_finds() -> None:
    schema = {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string"}, "size": {"type": "integer", "minimum": 1}, "note": {"type": "string"},
        "code": {"type": "string", "pattern": "^[a-z]+$"}}}
    compiled = compile_schema(schema)
    for i, elide in enumerate([["size"], ["size", "note"], ["id", "note"], ["note"], ["size"]] * 3):
        value = compiled.generate(f"e{i}", complete=True, elide=elide)
        remembered = compiled._elision.checked(value)
        fresh = RootElision(compiled._plan, compiled.schema).checked(value)  # nothing remembered yet
        assert remembered[0] is fresh[0] and remembered[1] == fresh[1]
        assert compiled.is_valid(value) is bool(fresh[0].is_valid(fresh[1]))
    # "code" (a pattern) is not a property the walk can skip, however often it is asked
    for _ in range(2):
        with pytest.raises(ValueError, match="code"):
            compiled._elision.checked({"id": "x", "code": ELIDED})


@pytest.mark.parametrize("additional", [True, False])
def test_elided_values_are_judged_member_by_member_as_the_rest_validator_judges_them(
        additional: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    schema = {"type": "object", "required": ["id", "size"], "additionalProperties": additional, "properties": {
        "id": {"type": "string"}, "size": {"type": "integer", "minimum": 1}, "note": {"type": "string"},
        "when": {"type": "string", "format": "date"}, "ref": {"$ref": "#/$defs/Ref"}},
        "$defs": {"Ref": {"type": "object", "required": ["to"], "properties": {"to": {"type": "string"}}}}}
    compiled = compile_schema(schema)
    elision = compiled._elision
    members = {"id": ["x", 3], "size": [2, 0, "2"], "note": ["n", None], "when": ["2024-02-03", "yesterday"],
               "ref": [{"to": "a"}, {"from": "a"}], "extra": [1]}
    values = []  # each member missing, elided or given (valid, of the wrong type, failing a format), an extra
    for states in itertools.product(range(3), repeat=len(members)):
        for variant in range(2):
            value: dict[str, Any] = {}
            for i, ((key, choices), state) in enumerate(zip(members.items(), states, strict=True)):
                if state == 1 and key in schema["properties"]:
                    value[key] = ELIDED
                elif state:
                    value[key] = choices[(variant + i) % len(choices)]
            values.append(value)
    assert sum(any(v is ELIDED for v in value.values()) for value in values) > 1000
    compiles = []
    real = elision._rest_validator
    monkeypatch.setattr(elision, "_rest_validator", lambda skipped: compiles.append(skipped) or real(skipped))
    verdicts = [compiled.is_valid(value) for value in values]
    assert compiles == []  # no validator compiled for any set of skipped names
    expected = []
    for value in values:
        validator, rest = RootElision(compiled._plan, compiled.schema).checked(value)
        expected.append(bool(validator.is_valid(rest)))
    assert verdicts == expected
    assert True in verdicts and False in verdicts


def test_elided_values_under_a_named_dialect_are_judged_by_the_root_validator() -> None:
    # a root naming its dialect ($schema): the members are judged by the root's own validator, in that dialect
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "required": ["a"],
              "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}}
    compiled = compile_schema(schema)
    assert compiled._elision._members_valid({"a": ELIDED, "b": "x"}) is True  # a's absence is forgiven
    assert compiled.is_valid({"a": ELIDED, "b": "x"}) and not compiled.is_valid({"a": ELIDED, "b": 1})
    assert not compiled.is_valid({"b": ELIDED})  # a required name missing, not elided


def test_seeded_random_draws_below_n_as_the_stock_algorithm_does() -> None:
    sizes = [1, 2, 3, 5, 7, 8, 9, 100, 1000, 2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**65 + 3, 10**30]
    for seed in range(200):
        inlined, stock = SeededRandom(seed * 7919), SeededRandom(seed * 7919)
        for n in sizes:  # the stream goes on from one draw to the next: states must agree all along
            assert inlined._randbelow(n) == stock._randbelow_with_getrandbits(n), (seed, n)
        assert inlined.getstate() == stock.getstate()


ITEM = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}


@pytest.mark.parametrize("array", [
    {"type": "array", "items": ITEM},
    {"type": "array", "items": ITEM, "minItems": 2, "maxItems": 3},
    {"type": "array", "items": ITEM, "uniqueItems": True},  # not plain: checked whole
    {"type": "array", "items": ITEM, "contains": {"properties": {"id": {"const": 9}}}},
    {"type": ["array", "null"], "items": ITEM},
    {"type": "array", "items": ITEM, "maxItems": 0},
    {"type": "array", "minItems": 1},
])
def test_an_array_of_items_known_valid_is_valid_where_the_shortcut_says_so(
        array: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    root = {"$ref": "#/$defs/List", "$defs": {"List": array}}
    validator = compile_validator(root)
    resolved = array
    for count in range(5):
        values = [{"id": 1}] * count
        if shaping._plain_array_fits(root, root, resolved, count):
            assert validator.is_valid(values), (array, count)
    hints = [[{"id": i % 2} for i in range(n)] for n in range(5)] + [[{"id": "x"}], [{"name": 1}]]
    shortcut = [orjson.dumps(Shaper(EPOCH).conform(root, root, hint, f"a{i}")) for i, hint in enumerate(hints)]
    monkeypatch.setattr(shaping, "_plain_array_fits", lambda *args: False)  # every array checked whole
    checked = [orjson.dumps(Shaper(EPOCH).conform(root, root, hint, f"a{i}")) for i, hint in enumerate(hints)]
    assert shortcut == checked

"""simulator.datagen.generate: valid, deterministic, realistic values from self-contained JSON Schemas."""

from __future__ import annotations

import base64
import datetime
import fnmatch
import functools
import hashlib
import ipaddress
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import jsonschema_rs
import pytest
import yaml

from simulator.canonical import escape_token, unescape_token
from simulator.datagen.generate import (
    DEFAULT_EPOCH,
    MAX_DEPTH,
    CompiledSchema,
    GenerationError,
    compile_schema,
    generate_value,
)
from simulator.datagen.names import classify_name, name_tokens, singular
from simulator.errors import SimulatorError

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs"
SEEDS = [f"seed-{i}" for i in range(40)]


def check(schema: Any, value: Any) -> None:
    """The core guarantee, with formats checked too."""
    assert jsonschema_rs.validator_for(schema).is_valid(value), (schema, value)
    assert jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(value), (schema, value)


def values(schema: Any, *, name: str | None = None, seeds: list[str] = SEEDS) -> Iterator[Any]:
    for seed in seeds:
        value = generate_value(schema, seed, name=name)
        check(schema, value)
        yield value


# --- public API --------------------------------------------------------------------------------


def test_public_api_and_error_hierarchy() -> None:
    import simulator.datagen.generate as datagen

    assert sorted(datagen.__all__) == sorted(
        [
            "DEFAULT_EPOCH",
            "ELIDED",
            "MAX_DEPTH",
            "CompiledSchema",
            "GenerationError",
            "compile_schema",
            "generate_value",
        ]
    )
    assert issubclass(GenerationError, ValueError)
    assert issubclass(GenerationError, SimulatorError)
    assert DEFAULT_EPOCH.tzinfo is not None


def test_compile_schema_is_cached_and_owns_a_copy() -> None:
    schema: dict[str, Any] = {"type": "string", "maxLength": 4}
    compiled = compile_schema(schema)
    assert isinstance(compiled, CompiledSchema)
    assert compile_schema({"type": "string", "maxLength": 4}) is compiled
    first = generate_value(schema, "s")
    schema["maxLength"] = 2  # mutating the caller's dict must not reach the cached plan
    assert isinstance(compiled.schema, dict) and compiled.schema["maxLength"] == 4
    assert len(generate_value(schema, "s")) <= 2
    assert compiled.generate("s") == first
    assert compiled.is_valid("abcd") and not compiled.is_valid("abcde")


# --- strings -------------------------------------------------------------------------------------


def test_plain_strings_respect_length_in_code_points() -> None:
    for low, high in [(0, 3), (5, 5), (20, 40), (1, 1), (0, 0), (120, 200)]:
        schema = {"type": "string", "minLength": low, "maxLength": high}
        for value in values(schema, seeds=SEEDS[:10]):
            assert low <= len(value) <= high


@pytest.mark.parametrize(
    ("pattern", "python_pattern"),
    [
        (r"^[A-Z]{3}-\d{4}$", None),
        (r"^[a-z0-9]+(?:-[a-z0-9]+)*$", None),
        (r"^\+?[1-9]\d{1,14}$", None),
        (r"^[^/]+/[^/]+$", None),
        (r"^\W\w{2}$", None),
        (r"^(?<year>\d{4})-(?<month>0[1-9]|1[0-2])$", r"^(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])$"),
        (r"^\p{L}{2,5}$", r"^[^\W\d_]{2,5}$"),
        (r"[\p{L}\p{N}_]{3}", r"\w{3}"),
        (r"^#[0-9a-fA-F]{6}$", None),
        (r"^(foo|bar|baz)+$", None),
        (r"abc", None),
    ],
)
def test_patterns_are_matched(pattern: str, python_pattern: str | None) -> None:
    for value in values({"type": "string", "pattern": pattern}, seeds=SEEDS[:15]):
        assert re.search(python_pattern or pattern, value), value


def test_pattern_with_length_bounds() -> None:
    schema = {"type": "string", "pattern": "^[a-z]+$", "minLength": 12, "maxLength": 14}
    for value in values(schema, seeds=SEEDS[:10]):
        assert re.fullmatch("[a-z]{12,14}", value)


def test_pattern_that_cannot_be_parsed_is_a_clear_error() -> None:
    with pytest.raises(GenerationError, match="pattern"):
        generate_value({"type": "string", "pattern": r"^\p{Greek}+$"}, "s")
    started = time.perf_counter()
    with pytest.raises(GenerationError, match="over 100000 characters"):
        generate_value({"type": "string", "pattern": "^(a{1000}){200}$"}, "s")
    assert time.perf_counter() - started < 2


FORMAT_CHECKS: dict[str, Any] = {
    "date": lambda v: datetime.date.fromisoformat(v),
    "date-time": lambda v: datetime.datetime.fromisoformat(v.replace("Z", "+00:00")),
    "time": lambda v: re.fullmatch(r"\d\d:\d\d:\d\dZ", v),
    "email": lambda v: re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", v),
    "idn-email": lambda v: "@" in v,
    "uuid": lambda v: uuid.UUID(v).version == 4,
    "uri": lambda v: v.startswith("https://"),
    "url": lambda v: v.startswith("https://"),
    "uri-reference": lambda v: v.startswith("/"),
    "hostname": lambda v: re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", v),
    "ipv4": lambda v: ipaddress.IPv4Address(v),
    "ipv6": lambda v: ipaddress.IPv6Address(v),
    "byte": lambda v: base64.b64decode(v, validate=True),
    "binary": lambda v: v.isalpha(),
    "password": lambda v: len(v) >= 8,
    "duration": lambda v: v.startswith("P"),
    "phone": lambda v: sum(ch.isdigit() for ch in v) >= 7,
    "uri-template": lambda v: "{" in v,
    "json-pointer": lambda v: v.startswith("/"),
}


@pytest.mark.parametrize("fmt", sorted(FORMAT_CHECKS))
def test_string_formats(fmt: str) -> None:
    for value in values({"type": "string", "format": fmt}, seeds=SEEDS[:10]):
        assert FORMAT_CHECKS[fmt](value), value


def test_dates_lie_before_the_epoch() -> None:
    epoch = datetime.datetime(2030, 6, 1, tzinfo=datetime.UTC)
    for seed in SEEDS:
        stamp = generate_value({"type": "string", "format": "date-time"}, seed, epoch=epoch)
        moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert epoch - datetime.timedelta(days=731) <= moment <= epoch
    naive = generate_value({"type": "string", "format": "date"}, "s", epoch=datetime.datetime(2030, 6, 1))
    assert naive.startswith(("2028", "2029", "2030"))


# --- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer"},
        {"type": "integer", "minimum": -5, "maximum": 5},
        {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3},
        {"type": "integer", "minimum": 10**12},
        {"type": "integer", "minimum": 10**30, "examples": [10**30 + 7]},
        {"type": "integer", "maximum": -(10**6)},
        {"type": "integer", "format": "int32"},
        {"type": "integer", "multipleOf": 7, "minimum": 50, "maximum": 100},
        {"type": "integer", "multipleOf": 0.5},
        {"type": "integer", "multipleOf": 2.5, "maximum": 0},
        {"type": "number"},
        {"type": "number", "minimum": 0, "maximum": 1},
        {"type": "number", "exclusiveMinimum": 0.001, "exclusiveMaximum": 0.002},
        {"type": "number", "multipleOf": 0.01, "minimum": 0},
        {"type": "number", "multipleOf": 0.1, "minimum": -1, "maximum": 1},
        {"type": "number", "multipleOf": 0.25, "exclusiveMinimum": 1, "exclusiveMaximum": 2},
        {"type": "number", "minimum": -1e308, "maximum": 1e308},
        {"type": "number", "format": "double", "minimum": 3.5, "maximum": 3.5},
    ],
)
def test_numbers_respect_bounds_and_multiple_of(schema: dict[str, Any]) -> None:
    for value in values(schema, seeds=SEEDS[:20]):
        assert isinstance(value, int | float) and not isinstance(value, bool)
        if schema["type"] == "integer":
            assert isinstance(value, int)
        if "minimum" in schema:
            assert value >= schema["minimum"]
        if "exclusiveMaximum" in schema:
            assert value < schema["exclusiveMaximum"]


def test_numbers_spread_over_narrow_ranges() -> None:
    assert len(set(values({"type": "number", "minimum": 0, "maximum": 1}))) > 20
    assert min(values({"type": "number", "minimum": -90, "maximum": 90})) < 0
    assert len(set(values({"type": "integer", "maximum": 0}))) > 20


def test_unbounded_numbers_look_realistic() -> None:
    for value in values({"type": "number"}):
        assert 1 <= value <= 1000 and round(value, 2) == value


def test_impossible_number_range_is_an_error() -> None:
    with pytest.raises(GenerationError, match="bounds"):
        generate_value({"type": "integer", "minimum": 5, "maximum": 6, "multipleOf": 10}, "s")


def test_booleans_and_null() -> None:
    seen = set(values({"type": "boolean"}))
    assert seen == {True, False}
    assert list(values({"type": "null"}, seeds=SEEDS[:3])) == [None, None, None]


# --- enum, const, examples, defaults ---------------------------------------------------------------


def test_enum_and_const() -> None:
    schema = {"enum": ["available", "pending", "sold", 3, None]}
    picked = list(values(schema))
    assert set(map(json.dumps, picked)) <= {json.dumps(v) for v in schema["enum"]}
    assert len(set(map(json.dumps, picked))) >= 4
    assert set(values({"const": {"a": [1, 2]}}, seeds=SEEDS[:3]).__next__()) == {"a"}


def test_enum_members_must_satisfy_the_other_keywords() -> None:
    schema = {"type": "string", "enum": ["a", "bb", 3], "minLength": 2}
    assert set(values(schema)) == {"bb"}
    with pytest.raises(GenerationError, match="enum"):
        generate_value({"type": "string", "enum": [1, 2]}, "s")


def test_returned_constants_are_copies() -> None:
    schema = {"const": {"a": [1]}}
    value = generate_value(schema, "s")
    value["a"].append(2)
    assert generate_value(schema, "s") == {"a": [1]}


def test_examples_and_defaults_are_reused_about_a_third_of_the_time() -> None:
    seeds = [f"s{i}" for i in range(400)]
    schema = {"type": "string", "examples": ["doggie"]}
    share = sum(value == "doggie" for value in values(schema, seeds=seeds)) / len(seeds)
    assert 0.2 < share < 0.4
    defaults = list(values({"type": "integer", "default": 42, "example": 7}, seeds=seeds))
    assert {42, 7} <= set(defaults)


def test_examples_that_do_not_validate_are_ignored() -> None:
    schema = {"type": "string", "maxLength": 3, "examples": ["far too long"], "default": "way too long"}
    assert all(len(v) <= 3 for v in values(schema))


# --- field-name heuristics -----------------------------------------------------------------------------


def test_name_normalisation() -> None:
    assert name_tokens("avatarURL") == ("avatar", "url")
    assert name_tokens("X-Rate-Limit") == ("x", "rate", "limit")
    assert name_tokens("created_at") == ("created", "at")
    assert name_tokens("HTTPStatusCode") == ("http", "status", "code")
    assert singular("photoUrls") == "photoUrl" and singular("categories") == "category"
    assert singular("addresses") == "address" and singular("status") == "status"
    assert classify_name("firstName") == "first_name" == classify_name("first-name")
    assert classify_name("avatar_url") == "image" == classify_name("avatarURL")
    assert classify_name("userId") == "id" and classify_name("user_uuid") == "uuid"
    assert classify_name("createdAt") == "timestamp" == classify_name("updated_at")
    assert classify_name("pub_date_ms") == "timestamp_ms"
    assert classify_name("is_active") is None
    # a "<word>_name" is a thing's label unless the word says which name it is
    assert classify_name("middleName") == "first_name" and classify_name("maiden_name") == "last_name"
    assert classify_name("city_name") == "city" and classify_name("bank_name") == "company"
    assert classify_name("feed_name") == "label" == classify_name("productName")


EPOCH_TS = DEFAULT_EPOCH.timestamp()
TWO_YEARS = 2 * 366 * 86400


def _iso(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


NAME_CHECKS: list[tuple[str, dict[str, Any], Any]] = [
    ("email", {"type": "string"}, lambda v: re.fullmatch(r"[a-z0-9._]+@[a-z0-9.-]+\.[a-z]+", v)),
    ("contactEmail", {"type": "string", "format": "email"}, lambda v: "@" in v),
    ("first_name", {"type": "string"}, lambda v: v[:1].isupper() and " " not in v),
    ("lastName", {"type": "string"}, lambda v: v[:1].isupper()),
    ("name", {"type": "string"}, lambda v: len(v.split()) >= 2),
    ("username", {"type": "string"}, lambda v: " " not in v and v == v.lower()),
    ("login", {"type": "string"}, lambda v: " " not in v),
    ("city", {"type": "string"}, lambda v: v[:1].isupper()),
    ("country_code", {"type": "string"}, lambda v: re.fullmatch("[A-Z]{2}", v)),
    ("countryCode", {"type": "string", "maxLength": 2}, lambda v: re.fullmatch("[A-Z]{2}", v)),
    ("state", {"type": "string"}, lambda v: v[:1].isupper()),
    ("zip", {"type": "string"}, lambda v: re.fullmatch(r"\d{5}", v)),
    ("phone_number", {"type": "string"}, lambda v: sum(c.isdigit() for c in v) >= 10),
    ("street", {"type": "string"}, lambda v: v.split()[0].isdigit()),
    ("company", {"type": "string"}, lambda v: v[:1].isupper()),
    ("description", {"type": "string"}, lambda v: v.endswith(".") and len(v.split()) >= 4),
    ("homepage", {"type": "string"}, lambda v: v.startswith("https://")),
    ("avatar_url", {"type": "string", "format": "uri"}, lambda v: v.endswith(".png")),
    ("currency", {"type": "string"}, lambda v: re.fullmatch("[A-Z]{3}", v)),
    ("price", {"type": "number"}, lambda v: v >= 0 and round(v, 2) == v),
    ("total", {"type": "number", "minimum": 0}, lambda v: round(v, 2) == v),
    ("quantity", {"type": "integer"}, lambda v: 0 <= v <= 20),
    ("lat", {"type": "number"}, lambda v: -90 <= v <= 90),
    ("longitude", {"type": "number"}, lambda v: -180 <= v <= 180),
    ("lng", {"type": "number", "format": "double"}, lambda v: -180 <= v <= 180),
    ("color", {"type": "string"}, lambda v: v.startswith("#") or v.isalpha()),
    ("language", {"type": "string"}, lambda v: 2 <= len(v) <= 3),
    ("timezone", {"type": "string"}, lambda v: "/" in v or v == "UTC"),
    ("ip_address", {"type": "string"}, lambda v: ipaddress.ip_address(v)),
    ("hostname", {"type": "string"}, lambda v: "." in v and " " not in v),
    ("uuid", {"type": "string"}, lambda v: uuid.UUID(v)),
    ("id", {"type": "integer"}, lambda v: v >= 1),
    ("id", {"type": "string"}, lambda v: " " not in v and v),
    ("userId", {"type": "string", "format": "uuid"}, lambda v: uuid.UUID(v)),
    ("created_at", {"type": "string"}, lambda v: EPOCH_TS - TWO_YEARS <= _iso(v).timestamp() <= EPOCH_TS),
    ("updatedAt", {"type": "integer"}, lambda v: EPOCH_TS - TWO_YEARS <= v <= EPOCH_TS),
    ("date", {"type": "string", "format": "date"}, lambda v: datetime.date.fromisoformat(v)),
    ("status", {"type": "string"}, lambda v: v == "active"),
    ("password", {"type": "string"}, lambda v: len(v) >= 10),
    ("token", {"type": "string"}, lambda v: re.fullmatch("[0-9a-f]{32}", v)),
]


@pytest.mark.parametrize(
    ("name", "schema", "ok"), NAME_CHECKS, ids=[f"{n}-{s['type']}" for n, s, _ in NAME_CHECKS]
)
def test_field_names_steer_values(name: str, schema: dict[str, Any], ok: Any) -> None:
    for value in values(schema, name=name, seeds=SEEDS[:15]):
        assert ok(value), (name, value)


def test_tags_are_short_words() -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    for value in values(schema, name="tags", seeds=SEEDS[:10]):
        assert all(tag.isalpha() and tag == tag.lower() for tag in value)


def _names(schema: dict[str, Any], parent: str | None) -> list[str]:
    return [value["name"] for value in values(schema, name=parent, seeds=SEEDS[:12])]


def test_a_things_name_is_a_label_and_a_persons_name_a_persons() -> None:
    """A team, a repository or a feed was named like a person ("Megan Burch"), since every
    ``name`` was a person's: now an object's kind (its own name, its members) says which."""
    from faker.providers.person.en_US import Provider

    first_names = set(Provider.first_names)
    text = {"type": "string"}
    thing = {"type": "object", "required": ["name"], "properties": {"id": {"type": "integer"}, "name": text}}
    person = {"type": "object", "required": ["name"], "properties": {"login": text, "name": text}}
    for parent in ("team", "repos", "feed", "node_pools", None):
        names = _names(thing, parent)
        assert not [n for n in names if n.split()[0] in first_names], (parent, names)
        assert all(len(n.split()) == 2 and n.istitle() for n in names), (parent, names)
    for parent, schema in (("assignees", thing), ("merged_by", thing), ("user", thing), (None, person),
                           ("repos", person)):
        names = _names(schema, parent)
        assert all(n.split()[0] in first_names for n in names), (parent, names)
    for org in _names(thing, "organization"):
        assert org.split()[0] not in first_names, org
    assert all(len(tag.split()) == 1 for tag in _names(thing, "tags"))


def test_name_heuristics_yield_to_the_schema() -> None:
    for value in values({"type": "string", "maxLength": 5}, name="email"):
        assert len(value) <= 5
    for value in values({"type": "string", "pattern": "^EMP-[0-9]{3}$"}, name="email"):
        assert re.fullmatch("EMP-[0-9]{3}", value)
    for value in values({"type": "number", "minimum": 1000, "maximum": 2000}, name="latitude"):
        assert 1000 <= value <= 2000
    for value in values({"type": "string", "enum": ["x", "y"]}, name="city"):
        assert value in ("x", "y")


# --- arrays --------------------------------------------------------------------------------------------


def test_arrays_default_to_one_to_three_items() -> None:
    lengths = {len(v) for v in values({"type": "array", "items": {"type": "integer"}})}
    assert lengths == {1, 2, 3}


def test_array_bounds_unique_and_prefix_items() -> None:
    for value in values({"type": "array", "items": {"type": "integer"}, "minItems": 5, "maxItems": 6}):
        assert 5 <= len(value) <= 6
    for value in values(
        {"type": "array", "items": {"enum": [1, 2, 3, 4]}, "minItems": 4, "uniqueItems": True}
    ):
        assert sorted(value) == [1, 2, 3, 4]
    for value in values({"type": "array", "items": {"type": "boolean"}, "uniqueItems": True, "minItems": 2}):
        assert sorted(value) == [False, True]
    schema = {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False}
    for value in values(schema):
        assert len(value) <= 2 and isinstance(value[0], str)
    with pytest.raises(GenerationError, match="unique"):
        generate_value({"type": "array", "items": {"enum": [1, 2]}, "minItems": 3, "uniqueItems": True}, "s")


def test_array_contains() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "contains": {"const": 7}, "maxItems": 3}
    for value in values(schema):
        assert 7 in value and len(value) <= 3
    schema = {
        "type": "array",
        "items": {"type": "integer", "maximum": 100},
        "contains": {"minimum": 90},
        "minContains": 2,
    }
    for value in values(schema):
        assert sum(1 for item in value if item >= 90) >= 2


# --- objects ----------------------------------------------------------------------------------------------


def test_required_properties_always_and_optional_ones_about_seventy_percent() -> None:
    schema = {
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "integer"}, "nick": {"type": "string"}},
    }
    seeds = [f"s{i}" for i in range(300)]
    produced = list(values(schema, seeds=seeds))
    assert all("id" in value for value in produced)
    share = sum("nick" in value for value in produced) / len(produced)
    assert 0.6 < share < 0.8


def test_additional_and_pattern_properties() -> None:
    closed = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    for value in values(closed):
        assert set(value) <= {"a"}
    mapping = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}}
    sizes = {len(value) for value in values(mapping)}
    assert sizes <= {1, 2} and 1 in sizes
    patterned = {
        "type": "object",
        "patternProperties": {"^x-[a-z]+$": {"type": "string"}},
        "additionalProperties": False,
        "minProperties": 1,
    }
    for value in values(patterned):
        assert value and all(re.match("^x-[a-z]+$", key) for key in value)


def test_property_counts_names_and_dependencies() -> None:
    schema = {
        "type": "object",
        "properties": {k: {"type": "integer"} for k in "abcdef"},
        "minProperties": 5,
        "maxProperties": 5,
    }
    assert all(len(v) == 5 for v in values(schema))
    names = {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "propertyNames": {"pattern": "^[A-Z]{3}$"},
    }
    for value in values(names):
        assert all(re.fullmatch("[A-Z]{3}", key) for key in value)
    dependent = {
        "type": "object",
        "properties": {"card": {"type": "string"}, "cvv": {"type": "string"}},
        "required": ["card"],
        "dependentRequired": {"card": ["cvv"]},
    }
    assert all("cvv" in v for v in values(dependent))


def test_required_properties_not_declared_get_strings() -> None:
    for value in values({"type": "object", "required": ["title", "count"]}):
        assert isinstance(value["title"], str) and "count" in value
    with pytest.raises(GenerationError, match="additionalProperties"):
        generate_value({"type": "object", "required": ["x"], "additionalProperties": False}, "s")


# --- composition --------------------------------------------------------------------------------------------


def test_all_of_merges_properties_and_constraints() -> None:
    schema = {
        "$defs": {"Base": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}},
        "allOf": [
            {"$ref": "#/$defs/Base"},
            {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "maxLength": 4}},
            },
            {"properties": {"id": {"minimum": 100, "maximum": 200}}},
        ],
    }
    for value in values(schema):
        assert 100 <= value["id"] <= 200 and len(value["name"]) <= 4


def test_all_of_with_two_patterns_and_additional_properties_false() -> None:
    both = {"allOf": [{"type": "string", "pattern": "^[a-z]{4}$"}, {"pattern": "^a"}]}
    for value in values(both, seeds=SEEDS[:10]):
        assert re.fullmatch("a[a-z]{3}", value)
    closed = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
            {"properties": {"b": {"type": "string"}}},
        ]
    }
    for value in values(closed):
        assert set(value) <= {"a"}


def test_contradictions_are_clear_errors() -> None:
    with pytest.raises(GenerationError, match="accepts nothing"):
        generate_value({"allOf": [{"type": "string"}, {"type": "integer"}]}, "s")
    with pytest.raises(GenerationError, match="accepts nothing"):
        generate_value(False, "s")
    with pytest.raises(GenerationError, match="accepts nothing"):
        generate_value({"type": "object", "properties": {"a": False}, "required": ["a"]}, "s")
    assert all(
        "a" not in v for v in values({"type": "object", "properties": {"a": False, "b": {"type": "integer"}}})
    )


def test_one_of_matches_exactly_one_branch() -> None:
    branches: list[dict[str, Any]] = [{"type": "integer"}, {"type": "number", "multipleOf": 0.5}]
    for value in values({"oneOf": branches}):
        matching = [jsonschema_rs.validator_for(b).is_valid(value) for b in branches]
        assert matching.count(True) == 1
    pets = {
        "$defs": {
            "Cat": {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"const": "cat"}, "lives": {"type": "integer"}},
            },
            "Dog": {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"const": "dog"}, "bark": {"type": "string"}},
            },
        },
        "oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}],
    }
    kinds = {value["kind"] for value in values(pets)}
    assert kinds == {"cat", "dog"}


def test_one_of_with_an_overlapping_catch_all_branch_is_disambiguated() -> None:
    branches: list[dict[str, Any]] = [
        {"type": "object", "properties": {"type": {"type": "string"}}},
        {"type": "object"},
    ]
    for value in values({"oneOf": branches}):
        assert sum(jsonschema_rs.validator_for(b).is_valid(value) for b in branches) == 1


def test_one_of_that_no_value_can_satisfy_raises() -> None:
    twins = {"oneOf": [{"type": "string"}, {"type": "string"}]}
    with pytest.raises(GenerationError, match="oneOf"):
        generate_value(twins, "s")


def test_any_of_not_and_if_then_else() -> None:
    nullable = {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]}
    produced = list(values(nullable, seeds=[f"s{i}" for i in range(200)]))
    assert 0 < sum(v is None for v in produced) < 60
    negated = {"type": "integer", "minimum": 1, "maximum": 4, "not": {"enum": [1, 2, 3]}}
    assert set(values(negated)) == {4}
    conditional = {
        "type": "object",
        "required": ["country", "code"],
        "properties": {"country": {"enum": ["US", "NL"]}, "code": {"type": "string"}},
        "if": {"properties": {"country": {"const": "US"}}},
        "then": {"properties": {"code": {"pattern": "^[0-9]{5}$"}}},
        "else": {"properties": {"code": {"pattern": "^[0-9]{4} ?[A-Z]{2}$"}}},
    }
    produced = list(values(conditional))
    assert {v["country"] for v in produced} == {"US", "NL"}


def test_true_and_empty_schemas_give_simple_values() -> None:
    for schema in (True, {}, {"description": "anything"}):
        for value in values(schema, seeds=SEEDS[:5]):
            assert isinstance(value, str | dict)


# --- $ref and recursion -------------------------------------------------------------------------------


def test_refs_with_escaped_and_percent_encoded_keys() -> None:
    schema = {
        "$defs": {
            "a/b": {"type": "integer", "minimum": 5, "maximum": 5},
            "c~d": {"type": "string", "const": "tilde"},
            "e f": {"type": "boolean", "const": True},
        },
        "type": "object",
        "required": ["x", "y", "z"],
        "properties": {
            "x": {"$ref": "#/$defs/a~1b"},
            "y": {"$ref": "#/$defs/c~0d"},
            "z": {"$ref": "#/$defs/e%20f"},
        },
    }
    assert next(values(schema, seeds=SEEDS[:3])) == {"x": 5, "y": "tilde", "z": True}


def test_ref_siblings_apply_too() -> None:
    schema = {"$defs": {"S": {"type": "string"}}, "$ref": "#/$defs/S", "maxLength": 3, "examples": ["abc"]}
    assert all(len(v) <= 3 for v in values(schema))


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def test_recursive_schemas_are_cut_at_the_depth_cap() -> None:
    tree = {
        "$defs": {
            "Node": {
                "type": "object",
                "required": ["name", "children"],
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                    "parent": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
                },
            }
        },
        "$ref": "#/$defs/Node",
    }
    for value in values(tree):
        assert _depth(value) <= 2 * (MAX_DEPTH + 2)
    linked = {
        "$defs": {
            "Item": {
                "type": "object",
                "required": ["value", "next"],
                "properties": {"value": {"type": "integer"}, "next": {"$ref": "#/$defs/Next"}},
            },
            "Next": {"oneOf": [{"$ref": "#/$defs/Item"}, {"type": "null"}]},
        },
        "$ref": "#/$defs/Item",
    }
    for value in values(linked):
        assert _depth(value) <= MAX_DEPTH + 2


def test_required_infinite_recursion_names_the_def() -> None:
    schema = {
        "$defs": {
            "Loop": {
                "type": "object",
                "required": ["again"],
                "properties": {"again": {"$ref": "#/$defs/Loop"}},
            }
        },
        "$ref": "#/$defs/Loop",
    }
    with pytest.raises(ValueError, match=r"\$defs/Loop"):
        generate_value(schema, "s")
    with pytest.raises(GenerationError, match="refers back to itself"):
        generate_value({"$defs": {"A": {"allOf": [{"$ref": "#/$defs/A"}]}}, "$ref": "#/$defs/A"}, "s")


def test_non_local_refs_are_rejected_clearly() -> None:
    with pytest.raises(GenerationError):
        generate_value({"$ref": "https://example.com/schema.json"}, "s")


# --- determinism -------------------------------------------------------------------------------------------

DETERMINISM_SCHEMA: dict[str, Any] = {
    "$defs": {
        "Tag": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
    },
    "type": "object",
    "required": ["id", "email", "tags", "code", "odd", "when", "price", "nick"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "email": {"type": "string"},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "uniqueItems": True},
        "code": {"type": "string", "pattern": r"^[^/a-z]{3}\W[^0-9]{2}$"},
        "odd": {"type": "string", "pattern": r"^\W{4}$"},
        "when": {"type": "string", "format": "date-time"},
        "price": {"type": "number", "multipleOf": 0.01},
        "nick": {"type": "string"},
        "city": {"type": "string"},
        "extra": {"type": "object", "additionalProperties": {"type": "integer"}},
        "choice": {"oneOf": [{"type": "integer"}, {"type": "string", "format": "ipv6"}]},
    },
}


def test_same_inputs_same_value_different_seeds_differ() -> None:
    first = generate_value(DETERMINISM_SCHEMA, "alpha", name="user")
    assert generate_value(json.loads(json.dumps(DETERMINISM_SCHEMA)), "alpha", name="user") == first
    assert generate_value(DETERMINISM_SCHEMA, "beta", name="user") != first
    assert generate_value(DETERMINISM_SCHEMA, "alpha", name="account") is not None


def test_global_random_state_is_untouched() -> None:
    random.seed(1234)
    state = random.getstate()
    generate_value(DETERMINISM_SCHEMA, "gamma")
    assert random.getstate() == state


def test_adding_a_property_keeps_the_other_fields() -> None:
    base = {
        "type": "object",
        "required": ["a", "b"],
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
    }
    grown = json.loads(json.dumps(base))
    grown["properties"]["c"] = {"type": "string", "format": "email"}
    grown["required"].append("c")
    for seed in SEEDS[:10]:
        before, after = generate_value(base, seed), generate_value(grown, seed)
        assert (before["a"], before["b"]) == (after["a"], after["b"])


_CHILD = """
import json, sys
from simulator.datagen.generate import generate_value
sys.path.insert(0, {tests!r})
from test_datagen import DETERMINISM_SCHEMA
print(json.dumps([generate_value(DETERMINISM_SCHEMA, f"seed-{{i}}", name="user") for i in range(20)], sort_keys=True))
"""


def test_identical_across_processes_and_hash_seeds() -> None:
    root = Path(__file__).resolve().parents[2]
    code = _CHILD.format(tests=str(Path(__file__).parent))
    outputs = []
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, check=True
        )
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    here = [generate_value(DETERMINISM_SCHEMA, f"seed-{i}", name="user") for i in range(20)]
    assert json.dumps(here, sort_keys=True).encode() == outputs[0].strip()


def test_threads_get_the_same_values_as_one_thread() -> None:
    expected = [generate_value(DETERMINISM_SCHEMA, f"t{i}") for i in range(30)]
    results: dict[int, list[Any]] = {}

    def work(worker: int) -> None:
        results[worker] = [generate_value(DETERMINISM_SCHEMA, f"t{i}") for i in range(30)]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result == expected for result in results.values())


def test_a_remembered_value_is_the_value_computed_afresh_and_the_caller_owns_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.datagen.generate as datagen

    datagen._VALUES.clear()
    computed = generate_value(DETERMINISM_SCHEMA, "memo", name="user", complete=True)
    expected = json.dumps(computed, sort_keys=True)

    def scribble(value: Any) -> None:  # a caller that mutates what it was given, at every depth
        if isinstance(value, dict):
            for member in value.values():
                scribble(member)
            value["scribbled"] = True
        elif isinstance(value, list):
            for member in value:
                scribble(member)
            value.append("scribbled")

    scribble(computed)
    remembered = generate_value(DETERMINISM_SCHEMA, "memo", name="user", complete=True)
    assert json.dumps(remembered, sort_keys=True) == expected
    # name, completeness and epoch are each part of the key: every variant is its own fresh value
    compiled = compile_schema(DETERMINISM_SCHEMA)
    later = datetime.datetime(2030, 6, 1, tzinfo=datetime.UTC)
    for name, complete, epoch in (("account", True, DEFAULT_EPOCH), ("user", False, DEFAULT_EPOCH),
                                  ("user", True, later)):
        assert json.dumps(generate_value(DETERMINISM_SCHEMA, "memo", name=name, complete=complete, epoch=epoch),
                          sort_keys=True) == json.dumps(compiled._generate("memo", name, epoch, complete),
                                                        sort_keys=True)
    # bounded: beyond the limit the oldest values are forgotten, and come back the same
    monkeypatch.setattr(datagen, "_VALUE_MEMO_SIZE", 3)
    for i in range(10):
        generate_value(DETERMINISM_SCHEMA, f"many-{i}")
    assert len(datagen._VALUES) <= 3
    assert json.dumps(generate_value(DETERMINISM_SCHEMA, "memo", name="user", complete=True),
                      sort_keys=True) == expected


def test_the_value_memo_does_not_keep_a_compiled_schema_alive() -> None:
    import gc
    import weakref

    import simulator.datagen.generate as datagen

    compiled = datagen.CompiledSchema({"type": "object", "properties": {"n": {"type": "integer"}}})
    first = compiled.generate("alive")
    assert compiled.generate("alive") == first, "remembered while the schema lives"
    ref = weakref.ref(compiled)
    del compiled
    gc.collect()
    assert ref() is None, "the memo's entries for it do not hold the compiled schema"
    again = datagen.CompiledSchema({"type": "object", "properties": {"n": {"type": "integer"}}})
    assert again.generate("alive") == first, "a new compiled object computes the same value"


# --- real specs ------------------------------------------------------------------------------------------

# Schemas in the corpus for which no valid value exists at all (checked by hand), with why;
# keys are (spec file, schema name or fnmatch pattern over operation schema names).
_TWIN_BRANCHES = (
    "oneOf branches InQueryParam and InCookie are identical schemas and InHeader values match both"
)
IMPOSSIBLE: dict[tuple[str, str], str] = {
    ("powerdns-auth-v31.yaml", "SearchResult"): (
        "additionalProperties: false with no properties allows only {}, which all three oneOf branches accept"
    ),
    ("otoroshi-v30.json", "GlobalJwtVerifier"): f"required `source`: {_TWIN_BRANCHES}",
    ("otoroshi-v30.json", "LocalJwtVerifier"): f"required `source`: {_TWIN_BRANCHES}",
    ("otoroshi-v30.json", "TransformSettings"): f"required `location`: {_TWIN_BRANCHES}",
    ("otoroshi-v30.json", "* /api/verifiers*"): "the body is a GlobalJwtVerifier (see above)",
}


@functools.lru_cache(maxsize=2)
def _load_spec(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


# Complex on purpose (C901 waived): an independent, deliberately naive translator that the loader
# is checked against; its nested helpers read as one recipe, and split up it would mirror the loader.
def self_contained_roots(spec: dict[str, Any], *, operations: bool = False) -> Iterator[tuple[str, Any]]:  # noqa: C901
    """Every component schema (or, with ``operations``, every inline JSON body schema of an
    operation) as a self-contained 2020-12 root: referenced schemas go to ``$defs``.

    A test helper, not the loader: it rewrites refs, turns OAS 3.0 ``nullable`` / 2.0
    ``x-nullable`` and boolean exclusive bounds into 2020-12, and nothing else.
    """
    oas30 = str(spec.get("openapi", "")).startswith("3.0")
    library: dict[str, Any] = {}

    def target(ref: str) -> str | None:
        ref = unquote(ref)  # a fragment is percent-encoded; a pointer is ~-escaped
        for base in ("#/components/schemas/", "#/definitions/"):
            if ref.startswith(base) and "/" not in ref[len(base) :]:
                return unescape_token(ref[len(base) :])
        if ref.startswith("#/"):  # any other schema in the document, keyed by its JSON pointer
            return ref[1:]
        return None

    def translate(node: Any) -> Any:
        if isinstance(node, list):
            return [translate(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and target(value) is not None:
                out[key] = "#/$defs/" + quote(escape_token(str(target(value))), safe="~")
            elif key in ("properties", "patternProperties") and isinstance(value, dict):
                out[key] = {name: translate(sub) for name, sub in value.items()}
            elif key in ("example", "examples", "default", "enum", "const"):
                out[key] = value
            else:
                out[key] = translate(value)
        if out.get("type") == "file":
            out["type"] = "string"
        for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(out.get(flag), bool) and out.pop(flag) and bound in out:
                out[flag] = out.pop(bound)
        nullable = out.pop("nullable", None) if oas30 else out.pop("x-nullable", None)
        if nullable is True:
            if isinstance(out.get("type"), str):
                out["type"] = [out["type"], "null"]
                if "enum" in out and None not in out["enum"]:
                    out["enum"] = [*out["enum"], None]
            elif "type" not in out:
                out = {"anyOf": [out, {"type": "null"}]}
        return out

    def lookup(key: str) -> Any:
        if not key.startswith("/"):
            return schemas[key]
        node: Any = spec
        for token in key[1:].split("/"):
            token = unescape_token(token)
            node = node[int(token)] if isinstance(node, list) else node.get(token, {})
        return node

    schemas = (spec.get("components") or {}).get("schemas") or spec.get("definitions") or {}

    def closure(root: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        stack = [root]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                ref = item.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/$defs/"):
                    key = unescape_token(unquote(ref[len("#/$defs/") :]))
                    if key not in found:
                        if key not in library:
                            library[key] = translate(lookup(key))
                        found[key] = library[key]
                        stack.append(found[key])
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        return found

    named = list(schemas.items()) if operations is False else list(_operation_schemas(spec))
    for name, raw in named:
        root = translate(raw)
        if isinstance(root, dict):
            defs = closure(root)
            if defs:
                root = {**root, "$defs": defs}
        yield name, root


def _operation_schemas(spec: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Inline JSON request and response schemas of the operations (2.0 and 3.x), by operation."""
    for path, item in (spec.get("paths") or {}).items():
        for method, operation in (item or {}).items():
            if not isinstance(operation, dict) or method.startswith("x-") or method == "parameters":
                continue
            where = f"{method.upper()} {path}"
            bodies = [
                ("request", media.get("schema"))
                for kind, media in ((operation.get("requestBody") or {}).get("content") or {}).items()
                if "json" in kind and isinstance(media, dict)
            ]
            bodies += [
                ("request", p.get("schema")) for p in operation.get("parameters", ()) if p.get("in") == "body"
            ]
            for status, response in (operation.get("responses") or {}).items():
                if not isinstance(response, dict):
                    continue
                bodies.append((status, response.get("schema")))
                for kind, media in (response.get("content") or {}).items():
                    if "json" in kind and isinstance(media, dict):
                        bodies.append((status, media.get("schema")))
            for label, schema in bodies:
                if isinstance(schema, dict) and schema:
                    yield f"{where} {label}", schema


SPEC_FILES = (
    sorted(p.name for p in SPECS.glob("*") if p.suffix in (".json", ".yaml")) if SPECS.is_dir() else []
)
# deterministic samples above these, to keep the corpus under a minute
MAX_SCHEMAS_PER_SPEC = 400
MAX_OPERATION_SCHEMAS_PER_SPEC = 80


def _sample(roots: list[tuple[str, Any]], limit: int) -> list[tuple[str, Any]]:
    if len(roots) <= limit:
        return roots
    return sorted(roots, key=lambda item: hashlib.sha256(item[0].encode()).hexdigest())[:limit]


@pytest.mark.skipif(not SPECS.is_dir(), reason=f"{SPECS} is absent")
@pytest.mark.parametrize("part", ["components", "operations"])
@pytest.mark.parametrize("spec_file", SPEC_FILES)
def test_corpus_schemas(spec_file: str, part: str) -> None:
    spec = _load_spec(SPECS / spec_file)
    roots = list(self_contained_roots(spec, operations=part == "operations"))
    roots = _sample(roots, MAX_SCHEMAS_PER_SPEC if part == "components" else MAX_OPERATION_SCHEMAS_PER_SPEC)
    failures: dict[str, str] = {}
    covered = not_schemas = 0
    started = time.perf_counter()
    for name, root in roots:
        try:
            validator = jsonschema_rs.validator_for(root, validate_formats=True)
        except (ValueError, jsonschema_rs.ValidationError):
            not_schemas += 1  # a defect of the spec itself (e.g. petstore 3.1's `$ref: null`)
            continue
        try:
            value = generate_value(root, f"corpus/{spec_file}/{name}", name=name)
        except GenerationError as error:
            failures[name] = str(error)
            continue
        assert validator.is_valid(value), (name, value)
        covered += 1
    patterns = [name for (file, name) in IMPOSSIBLE if file == spec_file]
    unexpected = {
        name: why for name, why in failures.items() if not any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }
    summary = (
        f"{spec_file} {part}: {covered}/{len(roots)} schemas generated valid values, "
        f"{len(failures)} impossible, {not_schemas} not valid JSON Schema, {time.perf_counter() - started:.1f}s"
    )
    print(summary)
    assert not unexpected, f"{summary}\n" + "\n".join(f"  {n}: {why}" for n, why in unexpected.items())
    if part == "components":  # a schema listed as impossible must stay impossible
        missing = sorted(p for p in patterns if "*" not in p and p not in failures)
        assert not missing, f"listed as impossible but generated: {missing}"


def test_petstore_pet_looks_real() -> None:
    if not SPECS.is_dir():
        pytest.skip(f"{SPECS} is absent")
    roots = dict(self_contained_roots(_load_spec(SPECS / "swagger-petstore-v30.yaml")))
    pets = [generate_value(roots["Pet"], f"pet-{i}", name="pet") for i in range(60)]
    assert all(pet["status"] in ("available", "pending", "sold") for pet in pets if "status" in pet)
    assert any(pet["name"] == "doggie" for pet in pets)
    assert all(url.startswith("https://") for pet in pets for url in pet["photoUrls"])

"""simulator.service.bundling: a schema node compiles with the ``$defs`` it reaches, and so gives
the verdicts, values, hidden-member answers and fixture keys it gave with its root's whole
``$defs``; where dropping a definition could change whether the document compiles, it keeps them all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest

from simulator.datagen.generate import CompiledSchema, compile_schema
from simulator.datagen.plan import shared_validator
from simulator.environments.environment import load_environment
from simulator.service.bundling import Bundler, reached_defs
from simulator.service.shaping import Shaper, _property_names
from simulator.service.simulator import Simulator
from simulator.service.writes import is_secret_name
from simulator.spec.navigation import object_properties, sub_schema

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs"
EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

ROOT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "owner": {"$ref": "#/$defs/user"},
        "tag": {"$ref": "#/$defs/label/properties/name"},
        "note": {"type": "string", "maxLength": 3},
    },
    "$defs": {
        "user": {"type": "object", "properties": {"name": {"type": "string"}, "team": {"$ref": "#/$defs/team"}},
                 "required": ["name"]},
        "team": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}},
        "label": {"type": "object", "properties": {"name": {"type": "string", "minLength": 2}}},
        "unused": {"type": "object", "properties": {"password": {"type": "string", "writeOnly": True}}},
    },
}


def _old_has_hidden(root: dict[str, Any], schema: dict[str, Any], secrets: bool) -> bool:
    """has_hidden as it read the whole text of sub_schema before bundling."""
    text = orjson.dumps(sub_schema(root, schema))
    return b'"writeOnly":true' in text or (secrets and any(is_secret_name(n) for n in _property_names(text)))


def test_a_node_carries_the_definitions_it_reaches_and_no_others() -> None:
    props = ROOT["properties"]
    owner = Bundler().self_contained(ROOT, props["owner"])
    assert list(owner["$defs"]) == ["user", "team"]  # team through user; in the root's order
    tag = Bundler().self_contained(ROOT, props["tag"])  # a pointer into a definition keeps it
    assert list(tag["$defs"]) == ["label"]
    note = Bundler().self_contained(ROOT, props["note"])
    assert note == {**props["note"], "$defs": {}}
    assert reached_defs({"$ref": "#"}) == frozenset()  # the document itself: the same node in both


@pytest.mark.parametrize(("why", "defs", "node"), [
    ("an unreferenced definition is no valid schema", {"bad": {"type": 5}}, {"type": "string"}),
    ("an unreferenced definition has a remote $ref", {"far": {"$ref": "https://example.com/s.json"}},
     {"type": "string"}),
    ("a definition names a resource with $id", {"a": {"$id": "urn:a", "type": "string"}}, {"type": "string"}),
    ("the node's $ref is percent-encoded", {"a b": {"type": "string"}}, {"$ref": "#/$defs/a%20b"}),
    ("the node's $ref names all of $defs", {"a": {"type": "string"}}, {"$ref": "#/$defs"}),
    ("the node has $defs of its own", {"a": {"type": "string"}}, {"$defs": {}, "type": "string"}),
])
def test_the_whole_defs_where_dropping_one_could_change_the_outcome(why: str, defs: dict[str, Any],
                                                                   node: dict[str, Any]) -> None:
    root = {"type": "object", "properties": {"x": node}, "$defs": defs}
    assert Bundler().self_contained(root, node) == sub_schema(root, node), why


@pytest.mark.parametrize("value", [{"name": "x"}, {"name": 3}, {}, {"name": "x", "team": {"size": 0}},
                                   {"name": "x", "team": {"size": 2}}, "text"])
def test_a_bundled_validator_gives_the_whole_documents_verdict(value: Any) -> None:
    node = ROOT["properties"]["owner"]
    whole = jsonschema_rs.Draft202012Validator(sub_schema(ROOT, node), validate_formats=True)
    assert Shaper(EPOCH).is_valid(ROOT, node, value) == whole.is_valid(value)


@pytest.mark.parametrize("secrets", [False, True])
def test_has_hidden_still_reads_every_definition_of_the_root(secrets: bool) -> None:
    shaper = Shaper(EPOCH)
    note = ROOT["properties"]["note"]
    # the unused definition's writeOnly password counts, as it did in the whole text
    assert shaper.has_hidden(ROOT, note, secrets) is True is _old_has_hidden(ROOT, note, secrets)
    named = {"type": "object", "properties": {"a": {"type": "string"}},
             "$defs": {"writeOnly": True, "properties": {"token": {"type": "string"}}}}
    for node in (named, named["properties"]["a"]):  # a definition named writeOnly, one named properties
        assert shaper.has_hidden(named, node, secrets) is _old_has_hidden(named, node, secrets)
    plain = {"type": "object", "properties": {"a": {"type": "string"}}, "$defs": {"b": {"type": "string"}}}
    assert shaper.has_hidden(plain, plain["properties"]["a"], secrets) is False


def test_plans_share_a_validator_per_text_and_remember_a_failure() -> None:
    first = shared_validator({"type": "string", "minLength": 2})
    assert first is shared_validator({"type": "string", "minLength": 2})
    assert shared_validator({"type": 5}) is None  # no valid schema: no validator, every time
    # {1: ...} and {"1": ...} have one JSON text; only the first is a schema jsonschema_rs takes
    assert shared_validator({"1": "x"}) is not None
    assert shared_validator({1: "x"}) is None


def test_a_compiled_schema_keeps_integers_past_64_bits() -> None:
    compiled = compile_schema({"type": "integer", "maximum": 10**30})
    assert compiled.schema["maximum"] == 10**30 and isinstance(compiled.schema["maximum"], int)


def _corpus(name: str) -> Simulator:
    path = SPECS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return Simulator(load_environment(str(path)))


@pytest.mark.parametrize("spec", ["stripe-v30.json", "digitalocean-v30.json"])
def test_on_a_corpus_spec_bundled_nodes_answer_as_whole_ones(spec: str) -> None:
    sim = _corpus(spec)
    shaper = Shaper(EPOCH)
    resources = sorted((r for r in sim.model.resources.values() if r.schema), key=lambda r: r.name)[:5]
    for res in resources:
        root = res.schema
        nodes = [root, *list(object_properties(root, root).values())[:5]]
        for node in nodes:
            for secrets in (False, True):
                assert shaper.has_hidden(root, node, secrets) is _old_has_hidden(root, node, secrets), res.name
        whole = CompiledSchema(sub_schema(root, root))
        for seed in ("a", "b"):  # the same values, and the same verdicts on them
            value = shaper.generate(root, root, seed, name=res.store)
            assert value == whole.generate(seed, name=res.store, epoch=EPOCH, complete=True), res.name
            for node in nodes[1:]:
                check = jsonschema_rs.Draft202012Validator(sub_schema(root, node), validate_formats=True)
                for member in value.values() if isinstance(value, dict) else ():
                    assert shaper.is_valid(root, node, member) == check.is_valid(member), res.name


def test_on_stripe_fixture_keys_are_the_whole_records_keys() -> None:
    """Stores whose id is also their parent's (refund_2: POST /v1/payment_intents/{intent}/refund
    names the intent ``id``): every fixture has the parent's id, so 4 of 5 are dropped."""
    quick, whole = _corpus("stripe-v30.json"), _corpus("stripe-v30.json")
    for store in ("refund_2", "customer", "reversal"):
        res = quick.world._owners[store]
        scope = ("pi_3MtwBwLkdIwHu7ix28a3tqPa",) * len(res.scope_params)
        assert list(quick.world.keys(res, scope)) == list(whole.world.base(res, scope)), store

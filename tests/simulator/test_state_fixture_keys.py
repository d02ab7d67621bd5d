"""simulator.state.fixtures: a collection's fixture keys, worked out from the id fields alone, are
the keys of the fixture records made whole, in the same order, for every shipped collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simulator.environments.environment import load_environment, shipped_environments
from simulator.service.simulator import Simulator
from simulator.state.fixtures import fixture_key
from simulator.state.store import Session, World

SCOPES = [("alice",), ("7",), ("alice", "2")]


def _scopes(params: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [()] if not params else [scope[: len(params)] + ("x",) * (len(params) - len(scope)) for scope in SCOPES]


@pytest.mark.parametrize("env", shipped_environments())
def test_fixture_keys_are_the_whole_records_keys_in_order(env: str) -> None:
    environment = load_environment(env)
    quick, whole = Simulator(environment), Simulator(environment)  # two worlds: no shared memo
    fast = 0
    for res in quick.model.resources.values():
        for scope in _scopes(res.scope_params):
            keys = list(quick.world.keys(res, scope))
            assert keys == list(whole.world.base(res, scope)), (env, res.name, scope)
            assert list(quick.world.positions(res, scope)) == keys
            owner = quick.world._owners.get(res.store, res)
            seed = f"{quick.world.seed}|fixture|{owner.store}|{'/'.join(scope)}|0|0"
            fast += fixture_key(quick.world, owner, scope, seed, 1 if owner.id_type == "integer" else None) is not None
    # the shortcut is taken where it matters: adafruit's nested collections (a user's feeds)
    assert fast or env != "adafruit"


def test_a_deleted_record_is_not_taken_and_a_fixture_is() -> None:
    sim = Simulator(load_environment("petstore"))
    res = next(r for r in sim.model.resources.values() if r.writable and not r.scope_params)
    session = Session()
    first = next(iter(sim.world.keys(res, ())))
    assert session.has(sim.world, res, (), first)
    session.put(res, (), first, None)  # deleted
    assert not session.has(sim.world, res, (), first)
    assert session.get(sim.world, res, (), first) is None
    assert not session.has(sim.world, res, (), "no-such-key")


FEES_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "fees", "version": "1"},
    "paths": {
        "/fees/{id}": {"get": {"operationId": "getFee", "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "a fee", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Fee"}}}}}}},
        "/fees/{id}/refund": {"post": {"operationId": "refundFee", "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "properties": {"amount": {"type": "integer"}}}}}},
            "responses": {"200": {"description": "the refunded fee, under the fee's id", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Fee"}}}}}}},
    },
    "components": {"schemas": {"Fee": {"type": "object", "required": ["id", "amount"], "properties": {
        "id": {"type": "string"}, "amount": {"type": "integer"}, "note": {"type": "string"}}}}},
}
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "specs"


def _every_fixture_tried(world: World) -> None:
    world.fixture_count = lambda res: world.fixtures  # type: ignore[method-assign]


@pytest.mark.parametrize("spec", ["inline", "stripe-v30.json", "gitlab-v3-v2.json", "spotify-v30.json"])
def test_a_collection_keyed_by_its_parents_id_tries_one_fixture_and_keeps_the_same_records(
        spec: str, tmp_path: Path) -> None:
    """``POST /fees/{id}/refund`` stores the refund under the fee's id: every fixture would get
    that key and be dropped as a duplicate after 20 attempts, so one is tried. The records are
    those of trying all of them (stripe's refunds walked 81 large records per fee)."""
    if spec == "inline":
        path = tmp_path / "fees.json"
        path.write_text(json.dumps(FEES_SPEC))
    else:
        path = CORPUS / spec
        if not path.is_file():
            pytest.skip(f"no spec corpus at {CORPUS}")
    environment = load_environment(path)
    quick, every = Simulator(environment), Simulator(environment)
    _every_fixture_tried(every.world)
    keyed_by_parent = [res for res in quick.model.resources.values() if quick.world.fixture_count(res) == 1]
    assert keyed_by_parent, f"{spec}: no collection keyed by its parent's id"
    for res in keyed_by_parent:
        assert res.id_field in res.scope_params and res.id_schema is None, res.name
        for scope in _scopes(res.scope_params):
            assert quick.world.base(res, scope) == every.world.base(res, scope), (spec, res.name, scope)
            assert list(quick.world.keys(res, scope)) == list(every.world.keys(res, scope)), (spec, res.name)
    kept = [res for res in quick.model.resources.values() if quick.world.fixture_count(res) > 1]
    assert all(quick.world.fixture_count(res) == environment.fixtures for res in kept)


def _corpus() -> list[Any]:
    specs = sorted(p for p in CORPUS.glob("*") if p.suffix in (".json", ".yaml")) if CORPUS.is_dir() else []
    if not specs:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no spec corpus at {CORPUS}"), id="absent")]
    return [pytest.param(p, id=p.name, marks=pytest.mark.slow) for p in specs]


@pytest.mark.parametrize("env", [*shipped_environments(), *_corpus()])
def test_one_fixture_is_made_alone_and_is_the_record_the_whole_scope_has(env: str | Path) -> None:
    """A read names one record of a scope: ``World.record`` makes that one (the others are not
    made) and it is the record ``base`` would hold under that key; for every shipped environment,
    and (slow tier) for every spec of the corpus (2,531 scopes over 40 specs)."""
    environment = load_environment(env)
    quick, whole = Simulator(environment), Simulator(environment)
    for res in quick.model.resources.values():
        for scope in _scopes(res.scope_params):
            records = whole.world.base(res, scope)
            for key, record in reversed(records.items()):  # the last first: no earlier one is made for it
                assert quick.world.record(res, scope, key) == record, (env, res.name, scope, key)
            assert quick.world.record(res, scope, "no-such-key") is None
            assert (res.store, "/".join(scope)) not in quick.world._base, (env, res.name, scope)


def test_a_record_without_an_id_field_is_keyed_without_being_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Baskets' response configurations (``/api/baskets/{name}/responses/{method}``) hold no id:
    their keys are the methods drawn for them. Reading one makes that one record, not the five
    of its basket and the duplicates drawn on the way (9 methods)."""
    sim = Simulator(load_environment("baskets"))
    res = next(r for r in sim.model.resources.values() if r.store == "response")
    assert res.id_field is None
    made: list[str] = []
    make = World._make_record

    def counted(world: World, *args: object) -> object:
        made.append(str(args[2]))
        return make(world, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(World, "_make_record", counted)
    keys = list(sim.world.keys(res, ("mybasket",)))
    assert len(keys) == sim.world.fixtures and not made
    session = Session()
    found = session.find(sim.world, res, ("mybasket",), keys[2])
    assert found is not None and found[0] == keys[2] and len(made) == 1
    assert found[1] == Simulator(load_environment("baskets")).world.base(res, ("mybasket",))[keys[2]]


def test_a_fixture_that_cannot_be_made_alone_is_what_the_whole_scope_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key told from the id field alone whose whole record the generator cannot make: the scope's
    own making decides (it skips that fixture), so a read finds no record there."""
    from simulator.datagen.plan import GenerationError

    sim = Simulator(load_environment("adafruit"))
    res = next(r for r in sim.model.resources.values() if r.scope_params and r.writable)
    scope = ("alice",) + ("x",) * (len(res.scope_params) - 1)
    keys = list(sim.world.keys(res, scope))
    refused = sim.world._layout(res, scope)[keys[0]][0]
    make = World._make_record

    def failing(world: World, res_: object, scope_: object, seed: str, id_value: object) -> object:
        if seed == refused:
            raise GenerationError(f"refused seed {seed}")
        return make(world, res_, scope_, seed, id_value)  # type: ignore[arg-type]

    monkeypatch.setattr(World, "_make_record", failing)
    assert sim.world.record(res, scope, keys[0]) is None
    assert keys[0] not in sim.world.base(res, scope)
    assert sim.world.record(res, scope, keys[1]) == sim.world.base(res, scope)[keys[1]]

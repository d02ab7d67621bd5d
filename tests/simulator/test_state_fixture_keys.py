"""simulator.state.fixtures: a collection's fixture keys, worked out from the id fields alone, are
the keys of the fixture records made whole, in the same order, for every shipped collection."""

from __future__ import annotations

import json
from pathlib import Path

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

"""simulator.state.fixtures: a collection's fixture keys, worked out from the id fields alone, are
the keys of the fixture records made whole, in the same order, for every shipped collection."""

from __future__ import annotations

import pytest

from simulator.environments.environment import load_environment, shipped_environments
from simulator.service.simulator import Simulator
from simulator.state.fixtures import fixture_key
from simulator.state.store import Session

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

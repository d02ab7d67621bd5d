"""The simulator keeps what it is told, on every shipped environment and every corpus spec.

For every writable resource: create (and replace/update where they exist) with generated valid
bodies, then read, list and delete (see ``roundtrip.py``): every written scalar field reads back
equal, every listed item reads, delete then read is 404. The figure per spec is printed in the
terminal summary ("state round trips") and in each test's output.

What is left below 100% is the spec's own shape, not the simulator's memory:

* a create that answers nothing that names the record and takes no id in its body or path
  (oai-petstore ``createPets``: 201 without a body; izettle ``createCategories``: 204/empty;
  GitHub ``git/create-tree`` and ``create-tag``: the
  answer is a sha the item path does not take; adafruit ``createToken``; tvmaze's scrobbles;
  Twilio ``CreateParticipant``, jumpseller ``post_jsapps_json``);
* an item path whose parameter schema refuses ids the spec's own records carry
  (swagger-petstore-v31: ``getPetById`` takes only 2..9 (``exclusiveMinimum: 1``,
  ``exclusiveMaximum: 10``), while pets are created and listed with other ids);
* request bodies the generator cannot make valid for their own schema (appwrite ``vars``,
  otoroshi auth modules: ``oneOf`` branches that overlap), and GitHub writes whose request
  types a field as text where the stored record holds an object (``git/create-commit``
  ``author``, ``pulls/create`` ``head``): refused with a 4xx naming the field, never stored as a
  made-up value.

* a list wrapper holding several arrays and no item GET (discourse ``/admin/badges.json``:
  ``badges``, ``badge_types``, ``badge_groupings``), so no record schema and no id field: the
  id a create answers is not the one the store keys by, and a replace by it is 404.

Each spec's figure may not fall below the floor recorded here (a regression guard); shipped
environments must be at 100% except where listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from roundtrip import FIGURES, round_trip

from simulator.environments.environment import load_environment, shipped_environments
from simulator.errors import SpecError
from simulator.service.simulator import Simulator

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO.parent / "shared" / "specs"
# specs whose round trips take minutes on a 2-core machine: every n-th writable resource
SAMPLE_EVERY = {"stripe-v30.json": 3}
# the least share of checks that must hold, per spec (100.0 unless listed); see the module docstring
FLOORS = {
    "adafruit": 99.0, "adafruit-io-v2.json": 99.0, "appwrite-server-v30.json": 98.0,
    "digitalocean-v30.json": 99.0, "discourse-v31.json": 90.0, "github-api-v30.json": 97.0,
    "gitlab-v3-v2.json": 99.0, "izettle-products-v30.json": 98.0, "jumpseller-v30.json": 98.0,
    "oai-petstore-v2.yaml": 90.0, "twilio-api-v30.json": 99.0,
    "otoroshi-v30.json": 99.0, "stripe-v30.json": 90.0, "swagger-petstore-v31.yaml": 70.0,
    "tvmaze-v30.json": 99.0,
}


def _targets() -> list[Any]:
    out = [pytest.param(name, id=name) for name in shipped_environments()]
    if SPECS.is_dir():
        out += [pytest.param(str(p), id=p.name) for p in sorted(SPECS.iterdir())
                if p.suffix in (".json", ".yaml", ".yml")]
    else:
        out.append(pytest.param("", id="corpus-absent",
                                marks=pytest.mark.skip(reason=f"{SPECS} is absent")))
    return out


@pytest.mark.timeout(900)
@pytest.mark.parametrize("ref", _targets())
def test_what_is_written_reads_back(ref: str) -> None:
    label = Path(ref).name
    try:
        sim = Simulator(load_environment(ref))
    except SpecError as exc:
        pytest.skip(f"{label} does not load: {exc}")
    tally = round_trip(sim, label, sample_every=SAMPLE_EVERY.get(label, 1))
    FIGURES[label] = tally
    print(f"{label}: {tally.figure()}")
    for line in [*tally.failures, *tally.notes[:10]]:
        print("   ", line[:300])
    floor = FLOORS.get(label, 100.0)
    assert tally.share() >= floor, f"{label}: {tally.figure()} is below {floor}%:\n" + "\n".join(tally.failures)


def test_the_driver_catches_a_simulator_that_forgets() -> None:
    """A canary: a simulator whose writes are lost (every create answered, nothing stored) must
    fail the round trips, so a 100% above means writes were kept, not that nothing was checked."""
    sim = Simulator(load_environment("petstore"))
    sim.handlers.create = _forgetful(sim.handlers.create)  # type: ignore[method-assign]
    tally = round_trip(sim, "petstore-forgetful")
    assert tally.checks > 10 and tally.share() < 80.0, tally.figure()
    assert any("after create answered 404" in f for f in tally.failures), tally.failures[:5]


def _forgetful(create: Any) -> Any:
    def forget(session: Any, res: Any, parsed: Any, *args: Any) -> Any:
        outcome = create(session, res, parsed, *args)
        session.restore_from(type(session)())  # drop what the create stored
        return outcome

    return forget

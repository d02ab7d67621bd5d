"""Resource and CRUD inference on the shipped environments, and the overrides that correct it."""

from __future__ import annotations

import pytest

from simulator.datagen.names import singular
from simulator.environments.environment import load_environment
from simulator.environments.resources import Binding, infer_resources, record_schema_of


def kinds(env: str) -> dict[str, tuple[str, str | None]]:
    environment = load_environment(env)
    model = infer_resources(environment.spec, environment.overrides)
    return {op: (b.kind, b.resource) for op, b in model.bindings.items()}


def test_petstore_resources_and_kinds() -> None:
    env = load_environment("petstore")
    model = infer_resources(env.spec, env.overrides)
    assert sorted(model.resources) == ["order", "pet", "user"]
    pet = model.resources["pet"]
    assert (pet.collection_path, pet.item_path, pet.id_param, pet.id_field, pet.id_type, pet.writable) == (
        "/pet", "/pet/{petId}", "petId", "id", "integer", True)
    assert model.resources["user"].id_field == "username"
    bound = kinds("petstore")
    assert bound["addPet"] == ("create", "pet")
    assert bound["getPetById"] == ("read", "pet")
    assert bound["updatePet"] == ("update", "pet"), "PUT /pet names the pet by the body's id"
    assert bound["updatePetWithForm"] == ("update", "pet")
    assert bound["deletePet"] == ("delete", "pet")
    assert bound["updateUser"] == ("replace", "user")
    assert bound["uploadFile"] == ("action", None)


def test_a_literal_sub_path_listing_the_collections_records_is_a_filtered_list() -> None:
    bound = kinds("petstore")
    assert bound["findPetsByStatus"] == ("list", "pet"), "not a resource of its own called 'findByStatu'"
    assert bound["findPetsByTags"] == ("list", "pet")


def test_envelope_responses_yield_the_inner_record() -> None:
    """crm wraps a record as {"status_code": .., "data": {...}}: the record is what is inside."""
    env = load_environment("crm")
    model = infer_resources(env.spec, env.overrides)
    company = model.resources["company"]
    assert company.id_field == "id" and company.schema is not None
    assert "name" in company.schema["$defs"]["Company"]["properties"]
    assert kinds("crm")["companiesOne"] == ("read", "company")


def test_record_schema_of_shapes() -> None:
    record = {"type": "object", "properties": {"id": {"type": "integer"}}}
    assert record_schema_of({"type": "array", "items": record}) == (record, True)
    assert record_schema_of({"type": "object", "properties": {"items": {"type": "array", "items": record}}}) == (
        record, True)
    assert record_schema_of({"type": "object", "properties": {"data": record, "status": {"type": "string"}}}) == (
        record, False)
    assert record_schema_of(record) == (record, False), "an object with an id is the record itself"
    assert record_schema_of({"type": "string"}) == (None, False)


def test_id_field_from_a_suffixed_path_parameter() -> None:
    env = load_environment("adafruit")
    model = infer_resources(env.spec, env.overrides)
    assert model.resources["feed"].id_field == "key", "{feed_key} addresses a feed by its key"
    assert model.resources["dashboard"].id_field == "key"


def test_museum_special_events() -> None:
    env = load_environment("museum")
    model = infer_resources(env.spec, env.overrides)
    event = model.resources["special-event"]
    assert (event.id_field, event.writable) == ("eventId", True)
    assert kinds("museum")["updateSpecialEvent"] == ("update", "special-event")


def test_shipped_overrides_apply() -> None:
    baskets = kinds("baskets")
    assert baskets["post_api_baskets_name"] == ("create", "basket")
    env = load_environment("baskets")
    assert infer_resources(env.spec, env.overrides).resources["response"].writable is False
    assert kinds("uspto")["perform-search"] == ("list", "record")
    assert kinds("links")["getRepositoriesByOwner"] == ("list", "repository_2")


def test_overrides_are_checked() -> None:
    spec = load_environment("petstore").spec
    with pytest.raises(ValueError, match="unknown kind 'fetch'"):
        infer_resources(spec, {"operations": {"getPetById": {"kind": "fetch"}}})
    with pytest.raises(ValueError, match="unknown resource 'dog'"):
        infer_resources(spec, {"operations": {"getPetById": {"resource": "dog"}}})
    model = infer_resources(spec, {"operations": {"getPetById": {"kind": "action", "resource": None}},
                                   "resources": {"pet": {"id_field": "name"}}})
    assert model.bindings["getPetById"] == Binding("getPetById", "action", None)
    assert model.resources["pet"].id_field == "name"


@pytest.mark.parametrize(("word", "expected"), [
    ("pets", "pet"), ("activities", "activity"), ("Categories", "Category"), ("boxes", "box"),
    ("address", "address"), ("addresses", "address"), ("data", "data"), ("photoUrls", "photoUrl"),
    # already singular, though they end in "s": resource and item names must not lose the "s"
    ("news", "news"), ("status", "status"), ("findByStatus", "findByStatus"), ("audio-analysis", "audio-analysis"),
    ("previous", "previous"), ("anti-virus", "anti-virus"), (" pets ", "pet"),
    ("statuses", "status"), ("aliases", "alias"), ("emojis", "emoji"), ("menus", "menu"),
])
def test_singular(word: str, expected: str) -> None:
    # one function names resources (resources.py) and array items (datagen/containers.py)
    assert singular(word) == expected


def test_tictactoe_put_square_answers_the_game_status() -> None:
    # inference took PUT /board/{row}/{column} (a bare "X" body) for a replace, whose answer was {}
    from simulator.messages import SimRequest
    from simulator.service.simulator import Simulator

    assert kinds("tictactoe")["put-square"][0] == "action"
    sim = Simulator(load_environment("tictactoe"))
    response = sim.handle(SimRequest("PUT", "/board/1/2", headers=(("content-type", "application/json"),),
                                     body=b'"X"'), "s")
    status = response.json()
    assert response.status == 200 and set(status) == {"winner", "board"}
    assert len(status["board"]) == 3 and all(len(row) == 3 for row in status["board"])


def test_identity_overrides_apply() -> None:
    """aliases, store and upsert: the escape hatch for what inference cannot know (docs/environments.md)."""
    spec = load_environment("petstore").spec
    inferred = infer_resources(spec)
    assert inferred.resources["user"].aliases == ("id",), "a user is also found by its numeric id"
    assert inferred.bindings["updateUser"].upsert is False
    model = infer_resources(spec, {"resources": {"user": {"aliases": ["email"], "store": "people"}},
                                   "operations": {"updateUser": {"upsert": True}}})
    assert model.resources["user"].aliases == ("email",)
    assert model.resources["user"].store == "people"
    assert model.bindings["updateUser"].upsert is True


def test_a_mistyped_override_is_refused_with_the_file_named(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    from simulator.errors import SpecError

    directory = Path(str(tmp_path))
    source = load_environment("petstore").spec.source
    (directory / "openapi.yaml").write_bytes(source.read_bytes())
    (directory / "env.yaml").write_text("overrides:\n  resources:\n    user: {alias: [email]}\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"env.yaml#/overrides: override for user: unknown key\(s\) \['alias'\]"):
        load_environment(directory)

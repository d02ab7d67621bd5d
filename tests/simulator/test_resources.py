"""Resource and CRUD inference on the shipped environments, and the overrides that correct it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from simulator.datagen.names import singular
from simulator.environments.environment import load_environment
from simulator.environments.resources import Binding, infer_resources, record_schema_of
from tests.support.spec_api import SpecApi


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


def _participants_spec() -> dict[str, Any]:
    """Twilio's shape: the item path names the record by ``{CallSid}``, the record spells it ``call_sid``."""
    participant = {"type": "object", "properties": {
        "call_sid": {"type": "string", "pattern": "^CA[0-9a-f]{32}$"},
        "label": {"type": "string"}, "muted": {"type": "boolean"}}}
    item = {"name": "CallSid", "in": "path", "required": True, "schema": {"type": "string"}}
    answer = {"200": {"description": "ok", "content": {"application/json": {"schema": participant}}}}
    created = {"201": {"description": "made", "content": {"application/json": {"schema": participant}}}}
    # the list's own address beside the records and the paging members
    page = {"type": "object", "properties": {
        "participants": {"type": "array", "items": participant}, "page": {"type": "integer"},
        "next_page_uri": {"type": ["string", "null"]}, "uri": {"type": "string"}}}
    return {
        "openapi": "3.0.3", "info": {"title": "calls", "version": "1"},
        "paths": {
            "/Participants.json": {
                "get": {"operationId": "ListParticipant", "responses": {"200": {
                    "description": "a page", "content": {"application/json": {"schema": page}}}}},
                "post": {"operationId": "CreateParticipant", "responses": created, "requestBody": {
                    "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"label": {"type": "string"}}}}}}},
            },
            "/Participants/{CallSid}.json": {
                "parameters": [item],
                "get": {"operationId": "FetchParticipant", "responses": answer},
                "delete": {"operationId": "DeleteParticipant", "responses": {"204": {"description": "gone"}}},
            },
        },
    }


def test_an_id_parameter_spelled_in_other_case_and_separators_names_its_field(tmp_path: Path) -> None:
    """``{CallSid}`` addresses a participant by its ``call_sid`` (four twilio resources had no
    id field: a create answered ``{}`` and no participant could be read back)."""
    api = SpecApi(tmp_path, _participants_spec())
    model = infer_resources(api.sim.env.spec)
    assert model.resources["Participant"].id_field == "call_sid"
    made = api.ok("POST", "/Participants.json", {"label": "coach"})
    assert made["label"] == "coach" and re.fullmatch(r"CA[0-9a-f]{32}", made["call_sid"]), made
    assert api.ok("GET", f"/Participants/{made['call_sid']}.json") == made
    api.ok("DELETE", f"/Participants/{made['call_sid']}.json")
    assert api.call("GET", f"/Participants/{made['call_sid']}.json").status == 404


def test_a_list_wrapper_may_carry_its_own_uri(tmp_path: Path) -> None:
    """Twilio's pages hold ``uri`` (the list's address) beside the records and the paging
    members: still a list of the collection's records, not an action answered with made-up ones."""
    api = SpecApi(tmp_path, _participants_spec())
    assert infer_resources(api.sim.env.spec).bindings["ListParticipant"].kind == "list"
    before = api.ok("GET", "/Participants.json")["participants"]
    made = api.ok("POST", "/Participants.json", {"label": "coach"})
    after = api.ok("GET", "/Participants.json")["participants"]
    assert after == [*before, made], after


def test_a_collection_get_answering_a_summary_is_not_the_record(tmp_path: Path) -> None:
    """discourse's ``GET /categories.json`` answers a summary (flags and two lists) with no id;
    the record is what the create answers inside its envelope, so a created category has an id
    that its item path then finds (before, the summary was taken as the record, with no id)."""
    category = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                                                 "color": {"type": "string"}}}
    summary = {"type": "object", "properties": {
        "can_create_category": {"type": "boolean"},
        "categories": {"type": "array", "items": category},
        "featured": {"type": "array", "items": category}}}
    wrapped = {"type": "object", "properties": {"category": category}}

    def answer(schema: dict[str, Any]) -> dict[str, Any]:
        return {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}}

    body = {"content": {"application/json": {"schema": {"type": "object", "properties": {
        "name": {"type": "string"}, "color": {"type": "string"}}}}}}
    spec = {
        "openapi": "3.1.0", "info": {"title": "forum", "version": "1"},
        "paths": {
            "/categories.json": {
                "get": {"operationId": "listCategories", "responses": answer(summary)},
                "post": {"operationId": "createCategory", "requestBody": body, "responses": answer(wrapped)},
            },
            "/categories/{id}.json": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "put": {"operationId": "updateCategory", "requestBody": body, "responses": answer(wrapped)},
                "delete": {"operationId": "deleteCategory", "responses": {"204": {"description": "gone"}}},
            },
        },
    }
    api = SpecApi(tmp_path, spec)
    res = infer_resources(api.sim.env.spec).resources["category"]
    assert res.id_field == "id" and res.schema is not None and "color" in res.schema["properties"], res
    made = api.ok("POST", "/categories.json", {"name": "news", "color": "red"})["category"]
    assert isinstance(made["id"], int) and made["name"] == "news", made
    changed = api.ok("PUT", f"/categories/{made['id']}.json", {"name": "news", "color": "blue"})["category"]
    assert changed == {**made, "color": "blue"}, changed
    api.ok("DELETE", f"/categories/{made['id']}.json")
    assert api.call("PUT", f"/categories/{made['id']}.json", {"name": "x"}).status == 404

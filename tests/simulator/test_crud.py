"""Stateful CRUD round trips on petstore, museum and crm (in-process): create -> read -> list
(filters and pagination) -> update -> delete -> 404, and the state hash moving only on writes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from simulator.environments.environment import load_environment
from simulator.messages import SimRequest, SimResponse
from simulator.service.simulator import Simulator

JSON = (("content-type", "application/json"),)
CRM_HEADERS = (*JSON, ("x-apideck-consumer-id", "test-consumer"), ("x-apideck-app-id", "test-app"))


class Client:
    def __init__(self, env: str, headers: tuple[tuple[str, str], ...] = JSON) -> None:
        self.sim = Simulator(load_environment(env))
        self.headers = headers

    def call(self, method: str, path: str, body: Any = None, query: tuple[tuple[str, str], ...] = ()) -> SimResponse:
        data = orjson.dumps(body) if body is not None else b""
        headers = self.headers if body is not None else tuple(h for h in self.headers if h[0] != "content-type")
        return self.sim.handle(SimRequest(method, path, query, headers, data))


@pytest.fixture
def petstore() -> Client:
    return Client("petstore")


# -- petstore ---------------------------------------------------------------------------------


def test_petstore_pet_round_trip(petstore: Client) -> None:
    created = petstore.call("POST", "/api/v3/pet", {"name": "Rex", "photoUrls": [], "status": "pending"})
    assert created.status == 200  # addPet documents 200 only
    pet = created.json()
    assert pet["name"] == "Rex" and isinstance(pet["id"], int), "server assigns an integer id when none is given"
    assert pet["id"] == 6, "fixtures hold ids 1..5: the next id is 6"

    read = petstore.call("GET", f"/api/v3/pet/{pet['id']}")
    assert (read.status, read.json()) == (200, pet)

    pending = petstore.call("GET", "/api/v3/pet/findByStatus", query=(("status", "pending"),)).json()
    assert pet in pending and all(p["status"] == "pending" for p in pending)
    sold = petstore.call("GET", "/api/v3/pet/findByStatus", query=(("status", "sold"),)).json()
    assert pet["id"] not in [p["id"] for p in sold], "the filter excludes a pet of another status"

    replaced = petstore.call("PUT", "/api/v3/pet", {**pet, "name": "Rex II", "status": "sold"})
    assert replaced.status == 200 and replaced.json()["name"] == "Rex II"
    by_form = petstore.call("POST", f"/api/v3/pet/{pet['id']}", query=(("name", "Rex III"),))
    assert by_form.status == 200 and by_form.json()["name"] == "Rex III" and by_form.json()["status"] == "sold"
    assert petstore.call("GET", f"/api/v3/pet/{pet['id']}").json()["name"] == "Rex III"

    assert petstore.call("DELETE", f"/api/v3/pet/{pet['id']}").status == 200
    gone = petstore.call("GET", f"/api/v3/pet/{pet['id']}")
    assert gone.status == 404, "a deleted pet is gone"
    assert petstore.call("DELETE", f"/api/v3/pet/{pet['id']}").status == 404, "deleting twice: the second is 404"


def test_petstore_client_given_id_is_kept(petstore: Client) -> None:
    created = petstore.call("POST", "/api/v3/pet", {"id": 4242, "name": "Max", "photoUrls": []}).json()
    assert created["id"] == 4242
    assert petstore.call("GET", "/api/v3/pet/4242").json()["name"] == "Max"


def test_petstore_user_round_trip_with_a_string_id(petstore: Client) -> None:
    user = {"username": "ada", "firstName": "Ada", "email": "ada@example.com"}
    assert petstore.call("POST", "/api/v3/user", user).status == 200
    assert petstore.call("GET", "/api/v3/user/ada").json()["firstName"] == "Ada"
    assert petstore.call("PUT", "/api/v3/user/ada", {**user, "firstName": "Augusta"}).status == 200
    assert petstore.call("GET", "/api/v3/user/ada").json()["firstName"] == "Augusta"
    assert petstore.call("DELETE", "/api/v3/user/ada").status == 200
    assert petstore.call("GET", "/api/v3/user/ada").status == 404


def test_petstore_unknown_pet_is_404_with_the_id_named(petstore: Client) -> None:
    response = petstore.call("GET", "/api/v3/pet/999")  # bad input: pet 999 was never created
    assert response.status == 404
    assert response.json()["errors"][0]["name"] == "petId"


def test_state_hash_moves_on_writes_only(petstore: Client) -> None:
    start = petstore.sim.state_hash()
    petstore.call("GET", "/api/v3/pet/1")
    petstore.call("GET", "/api/v3/pet/findByStatus", query=(("status", "available"),))
    assert petstore.sim.state_hash() == start, "reads leave the state hash alone"
    petstore.call("POST", "/api/v3/pet", {"name": "Rex", "photoUrls": []})
    assert petstore.sim.state_hash() != start


# -- museum -----------------------------------------------------------------------------------

EVENT = {"name": "Pirate Coding", "location": "Computer Room", "eventDescription": "Arr.",
         "dates": ["2025-03-01"], "price": 25}


def test_museum_special_event_round_trip() -> None:
    museum = Client("museum")
    created = museum.call("POST", "/special-events", EVENT)
    assert created.status == 201
    event = created.json()
    event_id = event["eventId"]
    assert event_id and {k: event[k] for k in EVENT} == EVENT

    assert museum.call("GET", f"/special-events/{event_id}").json() == event
    listed = museum.call("GET", "/special-events", query=(("limit", "30"),)).json()
    assert event_id in [e["eventId"] for e in listed]
    assert len(listed) == 6, "five fixtures plus the new event"

    patched = museum.call("PATCH", f"/special-events/{event_id}", {"price": 30})
    assert patched.status == 200 and patched.json()["price"] == 30 and patched.json()["name"] == EVENT["name"]
    assert museum.call("GET", f"/special-events/{event_id}").json()["price"] == 30

    assert museum.call("DELETE", f"/special-events/{event_id}").status == 204
    assert museum.call("GET", f"/special-events/{event_id}").status == 404


def test_museum_pagination_pages_are_disjoint_and_ordered() -> None:
    museum = Client("museum")
    everything = [e["eventId"] for e in museum.call("GET", "/special-events", query=(("limit", "30"),)).json()]
    page1 = [e["eventId"] for e in museum.call("GET", "/special-events",
                                                query=(("page", "1"), ("limit", "2"))).json()]
    page2 = [e["eventId"] for e in museum.call("GET", "/special-events",
                                                query=(("page", "2"), ("limit", "2"))).json()]
    assert page1 == everything[:2] and page2 == everything[2:4]


def test_museum_new_ids_never_collide_with_fixtures() -> None:
    """Generated ids reuse the spec's example uuid; a create must still get an unused one."""
    museum = Client("museum")
    before = {e["eventId"] for e in museum.call("GET", "/special-events", query=(("limit", "30"),)).json()}
    new = {museum.call("POST", "/special-events", EVENT).json()["eventId"] for _ in range(5)}
    assert len(new) == 5 and not new & before


# -- crm (envelopes: {"status_code": ..., "data": {...}}) ------------------------------------


def test_crm_company_round_trip() -> None:
    crm = Client("crm", CRM_HEADERS)
    created = crm.call("POST", "/crm/companies", {"name": "SpaceX", "id": "client-chosen"})
    assert created.status == 201 and created.json()["status_code"] == 201
    company_id = created.json()["data"]["id"]
    assert company_id != "client-chosen", "id is readOnly in the spec: the server assigns it"

    read = crm.call("GET", f"/crm/companies/{company_id}")
    assert read.status == 200 and read.json()["data"]["name"] == "SpaceX"
    assert read.json()["status_code"] == 200

    listed = crm.call("GET", "/crm/companies", query=(("limit", "30"),)).json()
    assert company_id in [c["id"] for c in listed["data"]]
    two = crm.call("GET", "/crm/companies", query=(("limit", "2"),)).json()
    assert len(two["data"]) == 2, "limit is honoured"

    updated = crm.call("PATCH", f"/crm/companies/{company_id}", {"name": "SpaceX Holdings"})
    assert updated.status == 200
    assert crm.call("GET", f"/crm/companies/{company_id}").json()["data"]["name"] == "SpaceX Holdings"

    assert crm.call("DELETE", f"/crm/companies/{company_id}").status == 200
    assert crm.call("GET", f"/crm/companies/{company_id}").status == 404


def test_crm_write_only_password_never_comes_back() -> None:
    crm = Client("crm", CRM_HEADERS)
    created = crm.call("POST", "/crm/users", {"first_name": "Ann", "password": "hunter2",
                                              "emails": [{"email": "ann@example.com"}]})
    assert created.status == 201
    user_id = created.json()["data"]["id"]
    assert b"hunter2" not in created.body
    read = crm.call("GET", f"/crm/users/{user_id}")
    assert "password" not in read.json()["data"] and b"hunter2" not in read.body
    listed = crm.call("GET", "/crm/users", query=(("limit", "100"),))
    assert b'"password"' not in listed.body, "writeOnly members are never in a response, fixtures included"

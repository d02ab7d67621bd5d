"""The in-process service: sessions, snapshots, the journal, auth, problem reports for bad input
(each test names the bad input), and no 5xx whatever the client sends."""

from __future__ import annotations

import orjson
import pytest

from simulator.environments.environment import load_environment
from simulator.messages import SimRequest, SimResponse
from simulator.service.simulator import Simulator

JSON = (("content-type", "application/json"),)
PROBLEM = "application/problem+json"
NEW_PET = b'{"name": "Rex", "photoUrls": []}'


@pytest.fixture
def sim() -> Simulator:
    return Simulator(load_environment("petstore"))


def get(sim: Simulator, path: str, session: str = "default", **kw: object) -> SimResponse:
    return sim.handle(SimRequest("GET", path, **kw), session)  # type: ignore[arg-type]


def post_pet(sim: Simulator, session: str = "default", body: bytes = NEW_PET) -> SimResponse:
    return sim.handle(SimRequest("POST", "/pet", headers=JSON, body=body), session)


# -- sessions, snapshots, journal, reset --------------------------------------------------------


def test_sessions_are_isolated(sim: Simulator) -> None:
    created = post_pet(sim, "alice").json()
    assert get(sim, f"/pet/{created['id']}", "alice").status == 200
    assert get(sim, f"/pet/{created['id']}", "bob").status == 404, "bob never saw alice's pet"
    assert sim.state_hash("bob") == sim.state_hash("fresh"), "an untouched session has the initial hash"
    assert sim.state_hash("alice") != sim.state_hash("bob")


def test_snapshot_and_restore_fork_a_session(sim: Simulator) -> None:
    post_pet(sim, "a")
    snap = sim.snapshot("a")
    assert snap == sim.state_hash("a"), "a snapshot id is the state hash (content-addressed)"
    post_pet(sim, "a", b'{"name": "Second", "photoUrls": []}')
    assert get(sim, "/pet/7", "a").status == 200
    sim.restore(snap, "a")
    assert sim.state_hash("a") == snap
    assert get(sim, "/pet/7", "a").status == 404, "the write after the snapshot is undone"
    sim.restore(snap, "b")  # a fork into another session
    assert get(sim, "/pet/6", "b").status == 200
    with pytest.raises(KeyError):
        sim.restore("no-such-snapshot", "a")


def test_journal_records_every_request_with_its_state(sim: Simulator) -> None:
    get(sim, "/pet/1")
    post_pet(sim)
    get(sim, "/pet/999")
    journal = sim.session().journal.entries()
    assert [(e["seq"], e["method"], e["path"], e["status"]) for e in journal] == [
        (0, "GET", "/pet/1", 200), (1, "POST", "/pet", 200), (2, "GET", "/pet/999", 404)]
    assert journal[0]["state"] != journal[1]["state"] == journal[2]["state"] == sim.state_hash()
    assert orjson.loads(journal[1]["response"])["name"] == "Rex"


def test_reset_returns_a_session_to_the_fixtures(sim: Simulator) -> None:
    initial = sim.state_hash()
    post_pet(sim)
    sim.reset()
    assert sim.state_hash() == initial and sim.session().journal.entries() == []
    assert get(sim, "/pet/6").status == 404


# -- problem reports for bad input --------------------------------------------------------------


def problem(response: SimResponse) -> dict:  # type: ignore[type-arg]
    assert response.content_type == PROBLEM, response.headers
    body = response.json()
    assert body["status"] == response.status
    return body  # type: ignore[no-any-return]


def test_unknown_path_is_404(sim: Simulator) -> None:
    body = problem(get(sim, "/no/such/path"))  # bad input: a path no operation has
    assert body["title"] == "Not Found" and "/no/such/path" in body["detail"]


def test_paths_that_route_nowhere_are_not_remembered(sim: Simulator) -> None:
    # bad input: paths no operation has; a client choosing them must not fill the route memo
    for i in range(50):
        assert get(sim, f"/no-such-thing/{i}").status == 404
    assert sim._routes == {}, "a 404 takes no slot of the route memo"
    assert get(sim, "/pet/1").status == 200
    assert list(sim._routes) == [("/pet/1", "GET")], "a path that routes is remembered"


def test_wrong_method_is_405_with_allow(sim: Simulator) -> None:
    response = sim.handle(SimRequest("PATCH", "/pet/1"))  # bad input: PATCH on /pet/{petId}
    assert response.status == 405
    assert dict(response.headers)["allow"] == "DELETE, GET, POST"
    problem(response)


def test_wrong_content_type_is_415_naming_the_header(sim: Simulator) -> None:
    response = sim.handle(SimRequest("POST", "/pet", headers=(("content-type", "text/csv"),), body=b"a,b"))
    assert response.status == 415  # bad input: content-type text/csv
    assert problem(response)["errors"] == [
        {"in": "header", "name": "content-type", "pointer": "",
         "message": "content type 'text/csv' is not one of "
                    "['application/json', 'application/xml', 'application/x-www-form-urlencoded']"}]


def test_malformed_json_is_400(sim: Simulator) -> None:
    response = post_pet(sim, body=b'{"name": ')  # bad input: truncated JSON
    assert response.status == 400
    assert problem(response)["errors"][0]["in"] == "body"


def test_schema_violations_are_422_with_pointers(sim: Simulator) -> None:
    # bad input: name is a number, photoUrls[1] is not a string, status is not in the enum
    response = post_pet(sim, body=b'{"name": 5, "photoUrls": ["a", 7], "status": "lost"}')
    assert response.status == 422
    where = sorted((e["in"], e["pointer"]) for e in problem(response)["errors"])
    assert where == [("body", "/name"), ("body", "/photoUrls/1"), ("body", "/status")]


def test_missing_required_body_field_is_422(sim: Simulator) -> None:
    response = post_pet(sim, body=b'{"photoUrls": []}')  # bad input: required "name" left out
    assert response.status == 422
    assert "name" in problem(response)["errors"][0]["message"]


def test_bad_path_and_query_parameters_are_400_naming_them(sim: Simulator) -> None:
    bad_path = problem(get(sim, "/pet/abc"))  # bad input: petId "abc" is not an integer
    assert bad_path["status"] == 400 and bad_path["errors"][0]["in"] == "path"
    assert bad_path["errors"][0]["name"] == "petId"
    bad_enum = problem(get(sim, "/pet/findByStatus", query=(("status", "lost"),)))  # bad input: status=lost
    assert bad_enum["errors"][0]["name"] == "status" and bad_enum["errors"][0]["in"] == "query"


def test_missing_required_headers_are_400_naming_each() -> None:
    crm = Simulator(load_environment("crm"))
    response = crm.handle(SimRequest("GET", "/crm/companies"))  # bad input: x-apideck-* headers left out
    # crm documents its own 400 shape (application/json): spoken, with the problem members carried
    assert (response.status, response.content_type) == (400, "application/json")
    body = response.json()
    assert sorted(e["name"] for e in body["errors"]) == ["x-apideck-app-id", "x-apideck-consumer-id"]
    assert all(e["in"] == "header" for e in body["errors"])


def test_a_5000_digit_limit_is_400() -> None:
    sim = Simulator(load_environment("crm"))
    headers = (("x-apideck-consumer-id", "c"), ("x-apideck-app-id", "a"))
    response = sim.handle(SimRequest("GET", "/crm/companies", query=(("limit", "9" * 5000),), headers=headers))
    assert response.status == 400, response.body[:200]  # bad input: a limit of 5,000 digits
    assert "limit" in response.body.decode()


def test_out_of_range_query_number_is_400() -> None:
    museum = Simulator(load_environment("museum"))
    response = museum.handle(SimRequest("GET", "/special-events", query=(("limit", "31"),)))  # bad input: max 30
    assert response.status == 400
    assert problem(response)["errors"][0]["message"] == "31 is greater than the maximum of 30"


def test_documented_error_shape_is_spoken() -> None:
    """baskets documents 404 without a schema and produces application/json (Swagger 2.0): the
    problem comes in that media type, so the response still conforms."""
    sim = Simulator(load_environment("baskets"))
    response = sim.handle(SimRequest("GET", "/api/baskets/never-created"))  # bad input: unknown basket
    assert response.status == 404 and response.content_type == "application/json"
    assert response.json()["errors"][0]["name"] == "name"


# -- auth ---------------------------------------------------------------------------------------


def test_auth_enforce_requires_the_specs_credentials() -> None:
    sim = Simulator(load_environment("petstore"), auth="enforce",
                    credentials={"api_key": ("k",), "petstore_auth": ("t",)})
    denied = get(sim, "/pet/1")  # bad input: no api_key header, no bearer token
    assert denied.status == 401
    challenge = dict(denied.headers)["www-authenticate"]
    assert challenge.startswith('ApiKey realm="petstore", name="api_key"') and 'Bearer realm="petstore"' in challenge
    assert get(sim, "/pet/1", headers=(("api_key", "k"),)).status == 200
    assert get(sim, "/pet/1", headers=(("authorization", "Bearer t"),)).status == 200
    assert get(sim, "/store/inventory", headers=(("authorization", "Bearer t"),)).status == 401, \
        "getInventory accepts only api_key"
    assert get(sim, "/user/logout").status == 200, "an operation without security needs nothing"


def test_auth_off_by_default(sim: Simulator) -> None:
    assert get(sim, "/pet/1").status == 200


def test_unknown_auth_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="auth must be one of"):
        Simulator(load_environment("petstore"), auth="sometimes")


# -- never a 5xx --------------------------------------------------------------------------------

HOSTILE = [
    SimRequest("GET", "/pet/findByStatus", query=(("status", "available"), ("limit", "9" * 40))),
    SimRequest("GET", "/pet/" + "9" * 40),  # an id beyond 64 bits
    SimRequest("POST", "/pet", headers=JSON, body=b'{"id": -92233720368547758090, "name": "x", "photoUrls": []}'),
    SimRequest("POST", "/pet", headers=JSON, body=b"\xff\xfe\x00garbage"),
    SimRequest("POST", "/pet", headers=JSON, body=b"[]"),
    SimRequest("POST", "/pet", headers=JSON, body=b"null"),
    SimRequest("POST", "/pet", headers=(("content-type", "application/x-www-form-urlencoded"),), body=b"%zz=%%"),
    SimRequest("POST", "/pet", headers=(("content-type", "multipart/form-data; boundary=x"),), body=b"--x\r\n"),
    SimRequest("PUT", "/pet", headers=JSON, body=b'{"id": 1e400, "name": "x", "photoUrls": []}'),
    SimRequest("GET", "/pet/%00%ff"),
    SimRequest("GET", "/user/%F0%9F%98%80"),
    SimRequest("POST", "/pet/1", query=(("name", "\x00"),)),
    SimRequest("DELETE", "/pet/1", headers=(("api_key", "\udcff"),)),
    SimRequest("GET", "//pet//1//"),
    SimRequest("POST", "/_sim/restore", body=b'[1, 2]'),
    SimRequest("GET", "/pet/" + "7" * 5000),  # an id of 5,000 digits (beyond int()'s limit)
    SimRequest("DELETE", "/pet/" + "7" * 5000),
    SimRequest("GET", "/pet/findByStatus", query=(("status", "available"), ("limit", "9" * 5000))),
    SimRequest("POST", "/pet", headers=JSON, body=b"[" * 5000 + b"1234567890123456789012" + b"]" * 5000),
    SimRequest("POST", "/pet", headers=JSON, body=b'{"id": ' + b"9" * 5000 + b', "name": "x", "photoUrls": []}'),
]


@pytest.mark.parametrize("request_", HOSTILE, ids=[f"{r.method} {r.path[:40]} {r.body[:20]!r} {len(r.path) + len(r.body)}" for r in HOSTILE])
def test_no_client_input_produces_a_5xx(sim: Simulator, request_: SimRequest) -> None:
    response = sim.handle(request_)
    assert response.status < 500, response.body

"""The ``/_sim`` control API (FastAPI, driven in process through the ASGI shell): its endpoints,
its problems for bad input, who may call it (each refused request names what was wrong with it),
and the bounded memory behind it (journal ring, eviction, 410, 507)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from simulator.environments.environment import load_environment
from simulator.service.simulator import Simulator
from simulator.serving.asgi import build_app
from simulator.serving.control_access import ADMIN_HEADER, ControlPolicy
from simulator.state.sessions import Limits

ORIGIN = "http://127.0.0.1:8000"
PET = {"name": "Rex", "photoUrls": []}
PROBLEM = "application/problem+json"


def client_for(sim: Simulator, policy: ControlPolicy | None = None) -> TestClient:
    return TestClient(build_app(sim, policy=policy), base_url=ORIGIN)


@pytest.fixture
def sim() -> Simulator:
    return Simulator(load_environment("petstore"))


@pytest.fixture
def client(sim: Simulator) -> Iterator[TestClient]:
    with client_for(sim) as c:
        yield c


def as_session(name: str, **extra: str) -> dict[str, str]:
    return {"x-sim-session": name, **extra}


# -- the endpoints -------------------------------------------------------------------------------


def test_control_api_round_trip(client: TestClient, sim: Simulator) -> None:
    s = as_session("s")
    assert client.post("/api/v3/pet", json=PET, headers=s).status_code == 200
    health = client.get("/_sim/health").json()
    assert health["status"] == "ok" and health["operations"] == 19 and health["fingerprint"]["env"] == "petstore"
    state = client.get("/_sim/state", params={"full": "1"}, headers=s).json()
    assert state["hash"] == sim.state_hash("s") and state["writes"] == 1 and "pet" in state["state"]["overlay"]
    assert "state" not in client.get("/_sim/state", headers=s).json(), "the overlay only when asked for"
    journal = client.get("/_sim/journal", headers=s).json()
    assert [e["method"] for e in journal["entries"]] == ["POST"] and journal["next_after"] is None
    snap = client.post("/_sim/snapshot", json={}, headers=s).json()["snapshot"]
    assert client.post("/_sim/reset", json={}, headers=s).json()["writes"] == 0
    restored = client.post("/_sim/restore", json={"snapshot": snap}, headers=s)
    assert restored.status_code == 200 and restored.json()["hash"] == snap
    assert client.delete(f"/_sim/snapshot/{snap}").json() == {"snapshot": snap, "deleted": True}
    assert client.post("/_sim/restore", json={"snapshot": snap}, headers=s).status_code == 404
    assert client.delete("/_sim/session", headers=s).json() == {"session": "s", "dropped": True}
    assert client.get("/_sim/sessions").json()["sessions"] == ["default"] or "s" not in sim.registry.names()


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), [
    ("POST", "/_sim/restore", b"not json", {"content-type": "application/json"}, 400),  # body is not JSON
    ("POST", "/_sim/restore", b'{"snapshot": "nope"}', {"content-type": "application/json"}, 404),  # unknown id
    ("POST", "/_sim/restore", b'{"snap": 1}', {"content-type": "application/json"}, 400),  # no snapshot field
    ("GET", "/_sim/reset", b"", {}, 405),  # reset needs POST
    ("GET", "/_sim/nothing", b"", {}, 404),  # no such control endpoint
    ("GET", "/_sim/journal?limit=0", b"", {}, 400),  # page size below 1
    ("GET", "/_sim/journal?after=x", b"", {}, 400),  # cursor not a number
    ("POST", "/_sim/reset", b"{}", {"content-type": "text/plain"}, 415),  # not JSON: what a cross-site form sends
    ("POST", "/_sim/reset", b"", {}, 415),  # no content type at all
    ("POST", "/_sim/reset", b"{}", {"x-sim-session": "s" * 300, "content-type": "application/json"}, 400),
])
def test_control_errors_are_problems(client: TestClient, method: str, path: str, body: bytes,
                                     headers: dict[str, str], status: int) -> None:
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == status


def test_openapi_document_is_valid_openapi_31(client: TestClient) -> None:
    document = client.get("/_sim/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert {"/_sim/journal", "/_sim/reset", "/_sim/snapshot/{snapshot_id}", "/_sim/session"} <= set(document["paths"])
    assert "RestoreRequest" in document["components"]["schemas"]


def test_docs_page_serves_both_apis(client: TestClient) -> None:
    page = client.get("/_sim/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/_sim/spec" in page.text and "/_sim/openapi.json" in page.text
    spec = client.get("/_sim/spec").json()
    assert spec["info"]["title"].startswith("Swagger Petstore") and "/pet" in spec["paths"]
    assert client.get("/api/v3/openapi.json").json() == spec, "the spec's own openapi.json path is free here"


# -- who may call it -------------------------------------------------------------------------------


def test_foreign_origin_cannot_reset(client: TestClient, sim: Simulator) -> None:
    client.post("/api/v3/pet", json=PET)
    before = sim.state_hash()
    for origin in ("https://evil.example", "null", "http://127.0.0.1:9999"):  # bad input: foreign origins
        refused = client.post("/_sim/reset", json={}, headers={"origin": origin})
        assert refused.status_code == 403 and "Origin" in refused.json()["detail"]
    text_plain = client.post("/_sim/reset", content=b"{}", headers={"content-type": "text/plain"})
    assert text_plain.status_code == 415  # bad input: a form-like body, what a cross-site page can send
    cross_site = client.post("/_sim/reset", json={}, headers={"sec-fetch-site": "cross-site"})
    assert cross_site.status_code == 403
    assert sim.state_hash() == before, "nothing was reset"
    assert client.post("/_sim/reset", json={}, headers={"origin": ORIGIN}).status_code == 200, "same origin is fine"


def test_foreign_host_is_refused(client: TestClient) -> None:
    # bad input: a DNS-rebinding page reaches 127.0.0.1 under its own name
    response = client.get("/_sim/journal", headers={"host": "attacker.example:8000"})
    assert response.status_code == 403 and "attacker.example" in response.json()["detail"]


def test_closed_plane_needs_the_admin_token(sim: Simulator) -> None:
    policy = ControlPolicy.for_server(bind_host="0.0.0.0", auth="off", admin_token="s3cret")
    with client_for(sim, policy) as client:
        assert client.get("/_sim/health").status_code == 200, "health needs no credentials"
        for headers in ({}, {ADMIN_HEADER: ""}, {ADMIN_HEADER: "wrong"}):  # bad input: no, empty, wrong token
            denied = client.get("/_sim/state", headers=headers)
            assert denied.status_code == 401 and "www-authenticate" in denied.headers, headers
            assert client.post("/_sim/reset", json={}, headers=headers).status_code == 401
        assert client.get("/_sim/state", headers={ADMIN_HEADER: "s3cret"}).status_code == 200
        assert client.get("/_sim/usage", headers={ADMIN_HEADER: "s3cret"}).json()["sessions"] >= 1


def test_a_closed_plane_without_a_token_generates_one() -> None:
    policy = ControlPolicy.for_server(bind_host="0.0.0.0", auth="off")
    assert policy.closed and policy.token_generated and len(policy.admin_token or "") >= 32
    assert not ControlPolicy.for_server(bind_host="127.0.0.1", auth="off").closed


def test_a_session_sees_only_itself_unless_admin() -> None:
    sim = Simulator(load_environment("petstore"), auth="enforce",
                    credentials={"api_key": ("alice-key", "bob-key"), "petstore_auth": ("alice-token",)})
    policy = ControlPolicy.for_server(bind_host="127.0.0.1", auth="enforce", admin_token="root")
    alice, bob = {"api_key": "alice-key"}, {"api_key": "bob-key"}
    with client_for(sim, policy) as client:
        secret = {"name": "alice's secret", "photoUrls": []}
        assert client.post("/api/v3/pet", json=secret,
                           headers=as_session("alice", authorization="Bearer alice-token")).status_code == 200
        assert client.get("/api/v3/pet/1", headers=as_session("alice", **alice)).status_code == 200
        # bad input: bob asks for alice's journal, state and a reset of her session
        assert client.get("/_sim/journal", headers=as_session("alice", **bob)).status_code == 403
        assert client.get("/_sim/state", headers=as_session("alice", **bob)).status_code == 403
        assert client.post("/_sim/reset", json={}, headers=as_session("alice", **bob)).status_code == 403
        assert client.get("/_sim/journal", headers=as_session("alice")).status_code == 401  # no credentials
        assert client.get("/_sim/usage", headers=as_session("bob", **bob)).status_code == 403  # admin only
        own = client.get("/_sim/journal", headers=as_session("alice", authorization="Bearer alice-token"))
        assert own.status_code == 200 and "alice's secret" in own.json()["entries"][0]["body"]
        assert client.get("/_sim/journal", headers=as_session("bob", **bob)).json()["entries"] == []
        admin = client.get("/_sim/journal", headers=as_session("alice", **{ADMIN_HEADER: "root"}))
        assert admin.status_code == 200 and len(admin.json()["entries"]) == 2


# -- bounded memory ----------------------------------------------------------------------------


def test_journal_is_a_ring_with_truncated_bodies_read_in_pages() -> None:
    sim = Simulator(load_environment("petstore"), limits=Limits(journal=5, journal_body=64))
    with client_for(sim) as client:
        for i in range(8):
            client.post("/api/v3/pet", json={"name": "x" * 200 + str(i), "photoUrls": []})
        first = client.get("/_sim/journal", params={"limit": 2}).json()
        assert [e["seq"] for e in first["entries"]] == [3, 4]
        assert first["dropped"] == 3 and first["total"] == 8 and first["next_after"] == 4
        rest = client.get("/_sim/journal", params={"after": first["next_after"], "limit": 10}).json()
        assert [e["seq"] for e in rest["entries"]] == [5, 6, 7] and rest["next_after"] is None
        entry = rest["entries"][0]
        assert entry["truncated"] is True and len(entry["body"].encode()) <= 64 and entry["body_bytes"] > 200


def test_an_evicted_session_is_410_never_recreated() -> None:
    sim = Simulator(load_environment("petstore"), limits=Limits(max_sessions=3))
    with client_for(sim) as client:
        created = client.post("/api/v3/pet", json=PET, headers=as_session("a")).json()
        for name in ("b", "c", "d"):  # "a" is now the least recently used beyond the limit
            client.get("/api/v3/pet/1", headers=as_session(name))
        gone = client.get(f"/api/v3/pet/{created['id']}", headers=as_session("a"))
        assert gone.status_code == 410 and gone.headers["content-type"] == PROBLEM
        assert "evicted" in gone.json()["detail"]
        assert client.get("/_sim/state", headers=as_session("a")).status_code == 410
        assert client.post("/_sim/reset", json={}, headers=as_session("a")).status_code == 200
        assert client.get(f"/api/v3/pet/{created['id']}", headers=as_session("a")).status_code == 404, \
            "after a reset the session starts from the fixtures"
        assert sim.registry.usage()["evicted_sessions"] >= 1


def test_snapshots_are_evicted_least_recently_used_and_deletable() -> None:
    sim = Simulator(load_environment("petstore"), limits=Limits(max_snapshots=2))
    with client_for(sim) as client:
        ids = []
        for name in ("p", "q", "r"):
            client.post("/api/v3/pet", json={"name": name, "photoUrls": []}, headers=as_session(name))
            ids.append(client.post("/_sim/snapshot", json={}, headers=as_session(name)).json()["snapshot"])
        assert client.post("/_sim/restore", json={"snapshot": ids[0]}).status_code == 410
        assert client.post("/_sim/restore", json={"snapshot": ids[2]}).status_code == 200
        assert client.delete(f"/_sim/snapshot/{ids[1]}").json()["deleted"] is True
        assert client.delete(f"/_sim/snapshot/{ids[1]}").json()["deleted"] is False


def test_a_full_session_refuses_writes_with_507() -> None:
    sim = Simulator(load_environment("petstore"), limits=Limits(session_bytes=2000))
    with client_for(sim) as client:
        statuses = [client.post("/api/v3/pet", json=PET).status_code for _ in range(60)]
        assert statuses[0] == 200 and statuses[-1] == 507
        assert client.get("/api/v3/pet/1").status_code == 200, "reads still work"
        full = client.post("/api/v3/pet", json=PET).json()
        assert full["status"] == 507 and "--session-bytes" in full["detail"]


def test_a_full_session_answers_in_the_apis_own_error_shape(tmp_path: Path) -> None:
    """Where the operation documents its errors (Stripe's ``default``: ``{"error": {...}}`` as
    JSON), the 507 speaks that shape, as every 4xx does: before, it was problem+json, which a
    client of that API cannot parse (schemathesis: an undocumented content type)."""
    error = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["message", "type"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"}}}}}
    spec = {"openapi": "3.0.0", "info": {"title": "notes", "version": "1"}, "paths": {"/v1/notes": {"post": {
        "operationId": "PostNotes", "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}}}},
        "responses": {
            "200": {"description": "ok", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"id": {"type": "string"}, "text": {"type": "string"}}}}}},
            "default": {"description": "error", "content": {"application/json": {"schema": error}}}}}}}}
    path = tmp_path / "notes.json"
    path.write_bytes(orjson.dumps(spec))
    sim = Simulator(load_environment(str(path)), limits=Limits(session_bytes=1000))
    with client_for(sim) as client:
        answers = [client.post("/v1/notes", json={"text": "x" * 100}) for _ in range(20)]
        assert answers[0].status_code == 200
        full = answers[-1]
        assert full.status_code == 507 and full.headers["content-type"].startswith("application/json")
        assert "--session-bytes" in full.json()["error"]["message"]


def test_eviction_never_changes_what_a_live_session_reads() -> None:
    # room for the live session, not for every noise session beside it
    bounded = Simulator(load_environment("petstore"), limits=Limits(max_sessions=4, state_budget=60_000))
    reference = Simulator(load_environment("petstore"), limits=Limits.unbounded())
    with client_for(bounded) as small, client_for(reference) as big:
        for round_ in range(30):
            for c in (small, big):
                c.post("/api/v3/pet", json={"name": f"noise {round_}", "photoUrls": []},
                       headers=as_session(f"noise-{round_}"))
            got = [c.post("/api/v3/pet", json={"name": f"live {round_}", "photoUrls": []},
                          headers=as_session("live")).content for c in (small, big)]
            assert got[0] == got[1]
            listed = [c.get("/api/v3/pet/findByStatus", params={"status": "available"},
                            headers=as_session("live")).content for c in (small, big)]
            assert listed[0] == listed[1]
        assert bounded.registry.usage()["evicted_sessions"] > 0, "the noise sessions were evicted"


def test_head_answers_like_get_without_a_body(client: TestClient, sim: Simulator) -> None:
    got = client.get("/api/v3/pet/1")
    head = client.head("/api/v3/pet/1")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert client.head("/api/v3/pet/999").status_code == 404


def test_journal_entries_are_json(sim: Simulator, client: TestClient) -> None:
    client.post("/api/v3/pet", json=PET)
    entries = client.get("/_sim/journal").json()["entries"]
    assert orjson.loads(entries[0]["response"])["name"] == "Rex"

"""Over HTTP (real ``toolgrad sim serve`` uvicorn processes on 127.0.0.1): the same bytes as
in-process, and the same bytes from two processes with different PYTHONHASHSEED."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from simulator.environments.environment import load_environment
from simulator.messages import SimRequest
from simulator.sandboxes.http import HTTPSandbox
from simulator.sandboxes.inprocess import InProcessSandbox

pytestmark = pytest.mark.timeout(180)

JSON = (("content-type", "application/json"),)
CRM = (*JSON, ("x-apideck-consumer-id", "c1"), ("x-apideck-app-id", "a1"))
# A history that writes, reads, lists, fails in each way and deletes; generated ids included.
SEQUENCES: dict[str, list[SimRequest]] = {
    "petstore": [
        SimRequest("POST", "/api/v3/pet", headers=JSON, body=b'{"name": "Rex", "photoUrls": [], "status": "sold"}'),
        SimRequest("GET", "/api/v3/pet/6"),
        SimRequest("GET", "/api/v3/pet/findByStatus", query=(("status", "sold"),)),
        SimRequest("GET", "/api/v3/pet/findByTags", query=(("tags", "a"), ("tags", "b"))),
        SimRequest("PUT", "/api/v3/pet", headers=JSON, body=b'{"id": 6, "name": "Rex II", "photoUrls": []}'),
        SimRequest("POST", "/api/v3/user", headers=JSON, body=b'{"username": "ada", "email": "a@b.co"}'),
        SimRequest("GET", "/api/v3/store/inventory"),
        SimRequest("GET", "/api/v3/user/login", query=(("username", "ada"), ("password", "pw"))),
        SimRequest("POST", "/api/v3/pet", headers=JSON, body=b'{"name": 5}'),  # 422
        SimRequest("POST", "/api/v3/pet", headers=(("content-type", "text/csv"),), body=b"x"),  # 415
        SimRequest("PATCH", "/api/v3/pet/1"),  # 405
        SimRequest("GET", "/api/v3/nowhere"),  # 404
        SimRequest("DELETE", "/api/v3/pet/6"),
        SimRequest("GET", "/api/v3/pet/6"),  # 404
    ],
    "crm": [
        SimRequest("POST", "/crm/companies", headers=CRM, body=b'{"name": "SpaceX"}'),
        SimRequest("POST", "/crm/companies", headers=CRM, body=b'{"name": "Tesla"}'),
        SimRequest("GET", "/crm/companies", query=(("limit", "3"),), headers=CRM),
        SimRequest("GET", "/crm/contacts", headers=CRM),
        SimRequest("GET", "/crm/companies"),  # 400: required headers missing
    ],
}


def run(sandbox: Any, sequence: list[SimRequest], session: str) -> list[tuple[int, Any, bytes]]:
    out = []
    for request in sequence:
        response = sandbox.request(request, session=session)
        out.append((response.status, response.headers, response.body))
    return out


@pytest.mark.parametrize("env_name", sorted(SEQUENCES))
def test_http_gives_the_same_bytes_as_in_process(env_name: str, server_factory: Callable[..., Any]) -> None:
    served = server_factory(env_name)
    remote = HTTPSandbox(served.origin, env_name)
    local = InProcessSandbox(load_environment(env_name))
    try:
        assert remote.fingerprint() == local.fingerprint()
        assert run(remote, SEQUENCES[env_name], "same-bytes") == run(local, SEQUENCES[env_name], "same-bytes")
        assert remote.state_hash("same-bytes") == local.state_hash("same-bytes")
        assert remote.journal("same-bytes") == local.journal("same-bytes")
    finally:
        remote.close()


@pytest.mark.parametrize("env_name", sorted(SEQUENCES))
def test_two_processes_with_different_hash_seeds_agree_byte_for_byte(
        env_name: str, server_factory: Callable[..., Any]) -> None:
    first, second = server_factory(env_name, hash_seed="1"), server_factory(env_name, hash_seed="4242")
    histories = []
    for served in (first, second):
        with httpx.Client(base_url=served.origin, timeout=10) as client:
            raw = []
            for request in SEQUENCES[env_name]:
                response = client.request(request.method, request.path, params=list(request.query),
                                          headers=[*request.headers, ("x-sim-session", "det")],
                                          content=request.body or None)
                raw.append((response.status_code, response.headers.get("content-type"), response.content))
            state = client.get("/_sim/state", params={"full": "1"}, headers={"x-sim-session": "det"}).content
            journal = client.get("/_sim/journal", headers={"x-sim-session": "det"}).content
        histories.append((raw, state, journal))
    assert histories[0][0] == histories[1][0], "responses differ between the two processes"
    assert histories[0][1] == histories[1][1], "state (hash and overlay) differs"
    assert histories[0][2] == histories[1][2], "journals differ"
    statuses = [status for status, _, _ in histories[0][0]]
    assert any(s >= 400 for s in statuses) and any(200 <= s < 300 for s in statuses)
    assert orjson.loads(histories[0][1])["writes"] >= 2


def test_session_header_isolates_over_http(server_factory: Callable[..., Any]) -> None:
    served = server_factory("petstore")
    with httpx.Client(base_url=served.origin, timeout=10) as client:
        created = client.post("/api/v3/pet", json={"name": "Solo", "photoUrls": []},
                              headers={"x-sim-session": "iso-a"}).json()
        assert client.get(f"/api/v3/pet/{created['id']}", headers={"x-sim-session": "iso-a"}).status_code == 200
        assert client.get(f"/api/v3/pet/{created['id']}", headers={"x-sim-session": "iso-b"}).status_code == 404


def test_auth_enforce_over_http(server_factory: Callable[..., Any]) -> None:
    served = server_factory("petstore", extra=("--auth", "enforce", "--credential", "api_key=k"))
    with httpx.Client(base_url=served.origin, timeout=10) as client:
        denied = client.get("/api/v3/pet/1")  # bad input: no credentials
        assert denied.status_code == 401 and "www-authenticate" in denied.headers
        assert client.get("/api/v3/pet/1", headers={"api_key": "k"}).status_code == 200


def test_oversized_body_is_413_not_a_crash(server_factory: Callable[..., Any]) -> None:
    served = server_factory("petstore")
    with httpx.Client(base_url=served.origin, timeout=30) as client:
        response = client.post("/api/v3/pet", content=b"x" * (17 * 1024 * 1024),  # bad input: 17 MiB body
                               headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert client.get("/_sim/health").status_code == 200

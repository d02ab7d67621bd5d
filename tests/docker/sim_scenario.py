"""The fixed request history the docker tier replays, and the byte-for-byte comparison.

Each environment gets create, read, list, delete and read-again (404). The id of the created
resource is read from the create response of the sandbox being driven, so the same sequence
runs against any sandbox; determinism makes the ids (and every other byte) agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import orjson

from simulator.environments.environment import load_environment
from simulator.messages import DEFAULT_SESSION, SimRequest
from simulator.sandboxes.inprocess import InProcessSandbox
from simulator.sandboxes.protocol import Sandbox

ENVS = ("petstore", "museum")
JSON = (("content-type", "application/json"),)


@dataclass(frozen=True)
class Scenario:
    create: SimRequest
    id_field: str
    item_path: str  # with "{id}"
    list_request: SimRequest

    def requests(self, created_id: str) -> list[SimRequest]:
        item = self.item_path.format(id=created_id)
        return [
            SimRequest("GET", item),
            self.list_request,
            SimRequest("DELETE", item),
            SimRequest("GET", item),
        ]


SCENARIOS = {
    "petstore": Scenario(
        create=SimRequest(
            "POST", "/pet", headers=JSON,
            body=b'{"id": 4242, "name": "rex", "photoUrls": ["https://example.com/rex.png"], "status": "sold"}',
        ),
        id_field="id",
        item_path="/pet/{id}",
        list_request=SimRequest("GET", "/pet/findByStatus", query=(("status", "sold"),)),
    ),
    "museum": Scenario(
        create=SimRequest(
            "POST", "/special-events", headers=JSON,
            body=orjson.dumps({
                "name": "Pirate Coding Workshop", "location": "Orca Room",
                "eventDescription": "Learn to code like a pirate.", "dates": ["2024-12-29", "2024-12-30"],
                "price": 25,
            }),
        ),
        id_field="eventId",
        item_path="/special-events/{id}",
        list_request=SimRequest("GET", "/special-events", query=(("limit", "50"),)),
    ),
}  # fmt: skip

Transcript = list[tuple[int, tuple[tuple[str, str], ...], bytes]]


def replay(sandbox: Sandbox, env: str, session: str = DEFAULT_SESSION) -> Transcript:
    """Run the env's scenario on ``session``; returns (status, headers, body) of every response."""
    scenario = SCENARIOS[env]
    created = sandbox.request(scenario.create, session=session)
    assert created.status in (200, 201), (env, created.status, created.body[:300])
    created_id = str(created.json()[scenario.id_field])
    out: Transcript = [(created.status, created.headers, created.body)]
    for request in scenario.requests(created_id):
        response = sandbox.request(request, session=session)
        out.append((response.status, response.headers, response.body))
    statuses = [status for status, _, _ in out]
    assert statuses[-1] == 404 and statuses[1] == 200, (env, statuses)
    return out


@dataclass(frozen=True)
class Observation:
    fresh_hash: str
    transcript: Transcript
    final_hash: str
    journal: bytes


def observe(sandbox: Sandbox, env: str, session: str) -> Observation:
    """Reset ``session``, replay the scenario and record everything that must be deterministic."""
    sandbox.reset(session)
    fresh = sandbox.state_hash(session)
    transcript = replay(sandbox, env, session)
    return Observation(fresh, transcript, sandbox.state_hash(session), orjson.dumps(sandbox.journal(session)))


def reference(env: str, session: str, seed: int = 0) -> Observation:
    """The same observation from the in-process simulator."""
    sandbox = InProcessSandbox(load_environment(env, seed=seed))
    try:
        return observe(sandbox, env, session)
    finally:
        sandbox.close()


def wait_healthy(base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(base_url + "/_sim/health", timeout=2.0, trust_env=False)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)
    raise AssertionError(f"{base_url} not healthy within {timeout} s ({last})")

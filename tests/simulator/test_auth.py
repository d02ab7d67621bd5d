"""``--auth enforce``: credentials checked against configured values, following each operation's
security requirements (alternatives and combinations); each refused request names its bad input."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from simulator.environments.environment import load_environment
from simulator.messages import SimRequest, SimResponse
from simulator.service.auth import CredentialError, parse_credential_flags
from simulator.service.simulator import Simulator

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "locks", "version": "1"},
    "components": {"securitySchemes": {
        "key": {"type": "apiKey", "in": "header", "name": "X-Key"},
        "qkey": {"type": "apiKey", "in": "query", "name": "key"},
        "ckey": {"type": "apiKey", "in": "cookie", "name": "sid"},
        "tok": {"type": "http", "scheme": "bearer"},
        "basic": {"type": "http", "scheme": "basic"},
        "oauth": {"type": "oauth2", "flows": {"implicit": {"authorizationUrl": "https://x/a", "scopes": {}}}},
        "tls": {"type": "mutualTLS"},
    }},
    "paths": {
        "/both": {"get": {"operationId": "both", "security": [{"key": [], "tok": []}],
                          "responses": {"200": {"description": "ok"}}}},
        "/either": {"get": {"operationId": "either", "security": [{"basic": []}, {"qkey": []}, {"ckey": []}],
                            "responses": {"200": {"description": "ok"}}}},
        "/oauth": {"get": {"operationId": "oauth", "security": [{"oauth": []}],
                           "responses": {"200": {"description": "ok"}}}},
        "/tls": {"get": {"operationId": "tls", "security": [{"tls": []}], "responses": {"200": {"description": "ok"}}}},
        "/open": {"get": {"operationId": "open", "security": [{}, {"key": []}],
                          "responses": {"200": {"description": "ok"}}}},
    },
}
CREDENTIALS = {"key": ("k1",), "qkey": ("q1",), "ckey": ("c1",), "tok": ("t1",), "basic": ("ada:pw",),
               "oauth": ("o1",), "tls": ("x",)}


@pytest.fixture
def sim(tmp_path: Path) -> Simulator:
    spec = tmp_path / "locks.yaml"
    spec.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    return Simulator(load_environment(spec), auth="enforce", credentials=CREDENTIALS)


def call(sim: Simulator, path: str, *headers: tuple[str, str], query: tuple[tuple[str, str], ...] = ()) -> SimResponse:
    return sim.handle(SimRequest("GET", path, query=query, headers=headers))


def basic(text: str) -> tuple[str, str]:
    return "authorization", "Basic " + base64.b64encode(text.encode()).decode()


def test_a_combination_needs_every_scheme(sim: Simulator) -> None:
    assert call(sim, "/both", ("x-key", "k1"), ("authorization", "Bearer t1")).status == 200
    assert call(sim, "/both", ("x-key", "k1")).status == 401  # bad input: the bearer half is missing
    assert call(sim, "/both", ("authorization", "Bearer t1")).status == 401  # bad input: the key half is missing


def test_alternatives_need_any_one(sim: Simulator) -> None:
    assert call(sim, "/either", basic("ada:pw")).status == 200
    assert call(sim, "/either", query=(("key", "q1"),)).status == 200
    assert call(sim, "/either", ("cookie", "a=b; sid=c1")).status == 200
    assert call(sim, "/either", basic("ada:nope")).status == 401  # bad input: wrong password
    assert call(sim, "/either", ("authorization", "Basic !!!")).status == 401  # bad input: not base64
    assert call(sim, "/either", query=(("key", "q1"), ("key", "q2"))).status == 401  # bad input: two keys


def test_empty_and_wrong_credentials_are_401_with_a_challenge(sim: Simulator) -> None:
    for headers in ((("x-key", ""), ("authorization", "Bearer ")),  # bad input: empty key, empty bearer
                    (("x-key", "wrong"), ("authorization", "Bearer t1")),  # bad input: wrong key
                    (("x-key", "k1"), ("authorization", "Bearer wrong"))):  # bad input: wrong token
        denied = call(sim, "/both", *headers)
        assert denied.status == 401, headers
        challenge = dict(denied.headers)["www-authenticate"]
        assert 'ApiKey realm="locks", name="X-Key"' in challenge and 'Bearer realm="locks"' in challenge


def test_scheme_names_are_case_insensitive(sim: Simulator) -> None:
    assert call(sim, "/oauth", ("authorization", "bEaReR o1")).status == 200
    assert call(sim, "/oauth", ("authorization", "bEaReR x")).status == 401  # bad input: a wrong token
    assert call(sim, "/either", ("authorization", "BASIC " + base64.b64encode(b"ada:pw").decode())).status == 200


def test_mutual_tls_can_never_be_satisfied_here(sim: Simulator) -> None:
    assert call(sim, "/tls", ("authorization", "Bearer x")).status == 401


def test_an_empty_requirement_makes_credentials_optional(sim: Simulator) -> None:
    assert call(sim, "/open").status == 200


def test_credentials_must_name_a_scheme_of_the_spec(tmp_path: Path) -> None:
    spec = tmp_path / "locks.yaml"
    spec.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    with pytest.raises(CredentialError, match="names no security scheme"):
        Simulator(load_environment(spec), auth="enforce", credentials={"nope": ("x",)})  # bad input: unknown name


def test_credential_flags_are_name_equals_value() -> None:
    assert parse_credential_flags(["key=a", "key=b", "basic=ada:p=w"]) == {"key": ("a", "b"), "basic": ("ada:p=w",)}
    for bad in ("key", "=x", "key="):  # bad input: no '=', no name, no value
        with pytest.raises(CredentialError):
            parse_credential_flags([bad])

"""A path that holds one document per scope, not a collection (GitHub's interaction limits, a
gist's star, a repository's Pages site, gitlab's notification settings), keeps what is written
to it. Before, every operation there was an action: a PUT answered its inputs echoed, and the
next GET answered a document generated afresh, as if the write had never happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.environments.resources import infer_resources
from simulator.spec.loader import load_spec
from tests.support.spec_api import INT, STR, answer, body, path_param, ref, spec
from tests.support.spec_api import SpecApi as Api

LIMIT = {"type": "string", "enum": ["existing_users", "contributors_only", "collaborators_only"]}
LIMITS = {"type": "object", "required": ["limit", "origin", "expires_at"],
          "properties": {"limit": LIMIT, "origin": STR, "expires_at": {"type": "string", "format": "date-time"}}}
PAGE = {"type": "object", "required": ["url", "cname", "public"],
        "properties": {"url": STR, "cname": STR, "public": {"type": "boolean"}, "build_type": STR}}
PROTECTION = {"type": "object", "required": ["url"], "properties": {
    "url": STR, "required_linear_history": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
    "review_count": {"type": "integer", "minimum": 0, "maximum": 6}}}
DOCUMENTS = spec({
    "/repos/{repo}/interaction-limits": {
        "parameters": [path_param("repo")],
        "get": {"operationId": "getLimits",
                "responses": answer("200", {"anyOf": [ref("Limits"), {"type": "object", "properties": {}}]})},
        "put": {"operationId": "setLimits",
                "requestBody": body({"type": "object", "required": ["limit"],
                                     "properties": {"limit": LIMIT, "expiry": STR}}),
                "responses": answer("200", ref("Limits"))},
        "delete": {"operationId": "removeLimits", "responses": answer("204")},
    },
    "/gists/{gist}/star": {
        "parameters": [path_param("gist")],
        "get": {"operationId": "isStarred", "responses": {**answer("204"), **answer("404")}},
        "put": {"operationId": "star", "responses": answer("204")},
        "delete": {"operationId": "unstar", "responses": answer("204")},
    },
    "/repos/{repo}/pages": {
        "parameters": [path_param("repo")],
        "get": {"operationId": "getPages", "responses": {**answer("200", ref("Page")), **answer("404", {})}},
        "post": {"operationId": "createPages",
                 "requestBody": body({"type": "object", "properties": {"cname": STR, "build_type": STR}}),
                 "responses": {**answer("201", ref("Page")), **answer("409", {})}},
        "patch": {"operationId": "updatePages",
                  "requestBody": body({"type": "object", "properties": {"cname": STR, "public": {"type": "boolean"}}}),
                  "responses": {**answer("204"), **answer("404", {})}},
        "delete": {"operationId": "deletePages", "responses": answer("204")},
    },
    "/repos/{repo}/protection": {
        "parameters": [path_param("repo")],
        "get": {"operationId": "getProtection", "responses": answer("200", ref("Protection"))},
        "put": {"operationId": "setProtection",
                "requestBody": body({"type": "object", "properties": {
                    "required_linear_history": {"type": "boolean"}, "review_count": INT}}),
                "responses": answer("200", ref("Protection"))},
    },
    "/me/following": {  # Spotify's: the body names ids to follow, which the GET lists
        "get": {"operationId": "getFollowed", "responses": answer("200", {"type": "object", "properties": {
            "artists": {"type": "object", "properties": {"total": INT}}}})},
        "put": {"operationId": "follow", "requestBody": body({"type": "object", "properties": {
            "ids": {"type": "array", "items": STR}}}), "responses": answer("204")},
        "delete": {"operationId": "unfollow", "parameters": [
            {"name": "ids", "in": "query", "required": True, "schema": STR}], "responses": answer("204")},
    },
}, {"Limits": LIMITS, "Page": PAGE, "Protection": PROTECTION}, title="singletons")


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return Api(tmp_path, DOCUMENTS)


def test_a_written_setting_reads_back_and_is_its_scopes_own(api: Api) -> None:
    before = api.ok("GET", "/repos/hello/interaction-limits")
    assert api.ok("GET", "/repos/hello/interaction-limits") == before, "a read changes nothing"
    other = api.ok("GET", "/repos/other/interaction-limits")
    for limit in ("existing_users", "collaborators_only"):
        put = api.ok("PUT", "/repos/hello/interaction-limits", {"limit": limit, "expiry": "one_week"})
        assert put["limit"] == limit
        assert api.ok("GET", "/repos/hello/interaction-limits") == put
    assert api.ok("GET", "/repos/other/interaction-limits") == other, "another repository's limits are its own"


def test_a_removed_setting_reads_as_the_empty_object_its_schema_allows(api: Api) -> None:
    api.ok("PUT", "/repos/hello/interaction-limits", {"limit": "contributors_only"})
    assert api.call("DELETE", "/repos/hello/interaction-limits").status == 204
    assert api.ok("GET", "/repos/hello/interaction-limits") == {}
    again = api.ok("PUT", "/repos/hello/interaction-limits", {"limit": "existing_users"})
    assert again["limit"] == "existing_users" and api.ok("GET", "/repos/hello/interaction-limits") == again


def test_a_flag_without_a_body_is_set_and_cleared(api: Api) -> None:
    assert api.call("GET", "/gists/g1/star").status == 204
    assert api.call("DELETE", "/gists/g1/star").status == 204
    assert api.call("GET", "/gists/g1/star").status == 404
    assert api.call("GET", "/gists/g2/star").status == 204, "another gist keeps its star"
    assert api.call("PUT", "/gists/g1/star").status == 204
    assert api.call("GET", "/gists/g1/star").status == 204


def test_a_document_that_exists_is_not_created_twice_and_a_patch_keeps_what_it_does_not_send(api: Api) -> None:
    site = api.ok("GET", "/repos/hello/pages")
    assert api.call("POST", "/repos/hello/pages", {"cname": "docs.example.com"}).status == 409
    assert api.call("PATCH", "/repos/hello/pages", {"public": not site["public"]}).status == 204
    patched = api.ok("GET", "/repos/hello/pages")
    assert patched == {**site, "public": not site["public"]}, "a setting not sent stays as it was"
    assert api.call("DELETE", "/repos/hello/pages").status == 204
    assert api.call("GET", "/repos/hello/pages").status == 404
    made = api.ok("POST", "/repos/hello/pages", {"cname": "docs.example.com", "build_type": "workflow"})
    assert made["cname"] == "docs.example.com" and made["build_type"] == "workflow"
    assert api.ok("GET", "/repos/hello/pages") == made


def test_a_patch_of_a_removed_document_answers_404_and_makes_nothing(api: Api) -> None:
    assert api.call("DELETE", "/repos/hello/pages").status == 204
    hash_before = api.sim.state_hash()
    # bad input: a PATCH of the removed site, whose operation documents 404
    assert api.call("PATCH", "/repos/hello/pages", {"cname": "docs.example.com"}).status == 404
    assert api.call("GET", "/repos/hello/pages").status == 404, "a PATCH does not make the site again"
    assert api.sim.state_hash() == hash_before  # while a PUT sets one again (the interaction limits' test)


def test_a_flag_sent_as_a_boolean_is_stored_in_the_objects_enabled_member(api: Api) -> None:
    api.ok("PUT", "/repos/hello/protection", {"required_linear_history": True})
    assert api.ok("GET", "/repos/hello/protection")["required_linear_history"]["enabled"] is True
    api.ok("PUT", "/repos/hello/protection", {"required_linear_history": False})
    assert api.ok("GET", "/repos/hello/protection")["required_linear_history"]["enabled"] is False


def test_a_member_the_document_cannot_hold_is_left_out_not_refused(api: Api) -> None:
    # bad input for the document: review_count 9 is valid for the PUT's schema (any integer)
    # but above the document's maximum of 6; the write succeeds and the count is not stored
    before = api.ok("GET", "/repos/hello/protection")["review_count"]
    answered = api.call("PUT", "/repos/hello/protection", {"review_count": 9, "required_linear_history": True})
    assert answered.status == 200, answered.body
    after = api.ok("GET", "/repos/hello/protection")
    assert after["review_count"] == before and after["required_linear_history"]["enabled"] is True


def test_two_fresh_simulators_make_the_same_document_and_writes_move_the_state_hash(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first, second = Api(tmp_path / "a", DOCUMENTS), Api(tmp_path / "b", DOCUMENTS)
    assert first.call("GET", "/repos/x/pages").body == second.call("GET", "/repos/x/pages").body
    hash_before = first.sim.state_hash()
    first.call("GET", "/repos/x/pages")
    assert first.sim.state_hash() == hash_before, "a read changes no state"
    first.ok("PATCH", "/repos/x/pages", {"cname": "a.example"})
    assert first.sim.state_hash() != hash_before


def test_writes_that_name_members_stay_actions(tmp_path: Path) -> None:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(DOCUMENTS), encoding="utf-8")
    model = infer_resources(load_spec(path))
    kinds = {op: (b.kind, b.resource) for op, b in model.bindings.items()}
    assert kinds["follow"] == ("action", None) and kinds["unfollow"] == ("action", None)
    assert kinds["getFollowed"] == ("action", None), "no write sets the followed artists' document"
    assert {kinds[op] for op in ("getLimits", "setLimits", "removeLimits")} == {
        ("read", "interaction-limit"), ("update", "interaction-limit"), ("delete", "interaction-limit")}
    assert kinds["createPages"] == ("create", "page") and model.resources["page"].singleton
    overridden = infer_resources(load_spec(path), {"operations": {"setLimits": {"kind": "action"}}})
    assert overridden.bindings["setLimits"].kind == "action", "an environment can take a write back"

"""A nested collection follows what the session did to its parent (simulator.state.scopes): a
parent it created has no children but those it wrote, a parent it deleted has none to read or add
to, a parent it never touched keeps the world's fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulator.environments.environment import load_environment
from simulator.environments.resources import infer_resources
from simulator.messages import SimRequest
from simulator.state.scopes import parent_links
from tests.support.spec_api import SpecApi as Api

STR = {"type": "string"}


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": STR}


def _collection(name: str, params: list[str], record: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{record}"}
    return {
        "parameters": [_param(p) for p in params],
        "get": {"operationId": f"list{name}", "responses": {"200": {
            "description": "ok", "content": {"application/json": {"schema": {"type": "array", "items": schema}}}}}},
        "post": {"operationId": f"create{name}",
                 "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
                 "responses": {"201": {"description": "made", "content": {"application/json": {"schema": schema}}}}},
    }


def _item(name: str, params: list[str], record: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{record}"}
    ok = {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}},
          "404": {"description": "missing"}}
    return {
        "parameters": [_param(p) for p in params],
        "get": {"operationId": f"get{name}", "responses": ok},
        "patch": {"operationId": f"update{name}",
                  "requestBody": {"content": {"application/json": {"schema": schema}}}, "responses": ok},
        "delete": {"operationId": f"delete{name}", "responses": {"204": {"description": "gone"},
                                                                "404": {"description": "missing"}}},
    }


def _record(key: str) -> dict[str, Any]:
    return {"type": "object", "properties": {key: STR, "title": STR}}


ORGS = {
    "openapi": "3.0.3", "info": {"title": "orgs", "version": "1"},
    "paths": {
        "/orgs": _collection("Orgs", [], "Org"),
        "/orgs/{org}": _item("Org", ["org"], "Org"),
        "/orgs/{org}/teams": _collection("Teams", ["org"], "Team"),
        "/orgs/{org}/teams/{team}": _item("Team", ["org", "team"], "Team"),
        "/orgs/{org_name}/teams/{team_slug}/members": _collection("Members", ["org_name", "team_slug"], "Member"),
    },
    "components": {"schemas": {"Org": _record("name"), "Team": _record("slug"), "Member": _record("email")}},
}


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return Api(tmp_path, ORGS)


def test_the_parent_of_a_nested_collection_is_found_whatever_its_template_is_named() -> None:
    """``/orgs/{org_name}/teams/{team_slug}/members`` belongs to ``/orgs/{org}/teams/{team}``;
    adafruit's ``/{username}/dashboards/{dashboard_id}/blocks`` to ``/{username}/dashboards/{id}``."""
    env = load_environment("adafruit")
    links = parent_links(infer_resources(env.spec, env.overrides).resources.values())
    assert {name: parent.name for name, parent in links.items()} == {
        "block": "dashboard", "data": "feed", "data_2": "group", "feed_2": "group"}


def test_a_created_parent_has_only_the_children_written_into_it(api: Api) -> None:
    api.ok("POST", "/orgs", {"name": "acme"})
    assert api.ok("GET", "/orgs/acme/teams") == []
    team = api.ok("POST", "/orgs/acme/teams", {"slug": "core", "title": "Core"})
    assert api.ok("GET", "/orgs/acme/teams") == [team]
    assert api.ok("GET", "/orgs/acme/teams/core") == team
    assert api.ok("GET", "/orgs/acme/teams/core/members") == []  # a created grandchild scope too


def test_a_parent_the_session_never_touched_keeps_the_worlds_fixtures(api: Api) -> None:
    """Unchanged behaviour: a key the session knows nothing of (it may be data the client cannot
    list) holds the world's fixtures, the same in every session."""
    teams = api.ok("GET", "/orgs/someone/teams")
    assert len(teams) == 5
    api.sim.reset("other")
    other = api.sim.handle(SimRequest("GET", "/orgs/someone/teams", (), (), b""), "other")
    assert other.json() == teams


def test_a_fixture_parent_the_session_changed_keeps_its_fixtures(api: Api) -> None:
    org = api.ok("GET", "/orgs")[0]["name"]
    teams = api.ok("GET", f"/orgs/{org}/teams")
    api.ok("PATCH", f"/orgs/{org}", {"title": "renamed"})
    assert api.ok("GET", f"/orgs/{org}/teams") == teams


def test_a_deleted_parent_has_no_children_to_read_list_or_add_to(api: Api) -> None:
    """Bad input after the delete: reads, lists and a create under the gone parent are 404s that
    name the parent's path parameter, and the refused create changes nothing."""
    org = api.ok("GET", "/orgs")[0]["name"]
    team = api.ok("GET", f"/orgs/{org}/teams")[0]["slug"]
    api.ok("DELETE", f"/orgs/{org}")
    before = api.sim.state_hash()
    for method, path, data in (("GET", f"/orgs/{org}/teams", None), ("GET", f"/orgs/{org}/teams/{team}", None),
                               ("POST", f"/orgs/{org}/teams", {"slug": "late"}),
                               ("DELETE", f"/orgs/{org}/teams/{team}", None),
                               ("GET", f"/orgs/{org}/teams/{team}/members", None)):
        response = api.call(method, path, data)
        assert response.status == 404, (method, path, response.body)
        problem = response.json()
        assert problem["detail"] == f"org {org!r} does not exist"
        assert problem["errors"][0]["name"] in ("org", "org_name")
    assert api.sim.state_hash() == before


def test_under_a_created_parent_a_child_the_session_never_wrote_is_not_there(api: Api) -> None:
    api.ok("POST", "/orgs", {"name": "acme"})
    response = api.call("GET", "/orgs/acme/teams/ghost/members")
    assert response.status == 404
    assert response.json()["detail"] == "team 'ghost' does not exist"
    assert response.json()["errors"][0]["name"] == "team_slug"
    assert api.call("GET", "/orgs/acme/teams/ghost").status == 404


def test_snapshots_keep_the_scopes_they_were_taken_with(api: Api) -> None:
    api.ok("POST", "/orgs", {"name": "acme"})
    api.ok("POST", "/orgs/acme/teams", {"slug": "core"})
    snap = api.sim.snapshot()
    api.ok("DELETE", "/orgs/acme")
    assert api.call("GET", "/orgs/acme/teams").status == 404
    api.sim.restore(snap)
    assert [t["slug"] for t in api.ok("GET", "/orgs/acme/teams")] == ["core"]


def test_a_parent_made_again_finds_what_its_scope_held(api: Api) -> None:
    """As the module says: a delete does not cascade record by record, so a parent re-created
    under the same key sees the children the session wrote before."""
    api.ok("POST", "/orgs", {"name": "acme"})
    team = api.ok("POST", "/orgs/acme/teams", {"slug": "core"})
    api.ok("DELETE", "/orgs/acme")
    api.ok("POST", "/orgs", {"name": "acme"})
    assert api.ok("GET", "/orgs/acme/teams") == [team]


class _FiveFixtures:
    """A world stand-in: every scope holds records 1 to 5, tagged "x"."""

    @staticmethod
    def base(res: Any, scope: tuple[str, ...]) -> dict[str, Any]:
        return {str(i): {"id": i, "tag": "x"} for i in range(1, 6)}

    @staticmethod
    def keys(res: Any, scope: tuple[str, ...]) -> dict[str, int]:
        return {str(i): i - 1 for i in range(1, 6)}

    positions = keys

    @classmethod
    def record(cls, res: Any, scope: tuple[str, ...], key: str) -> Any:
        return cls.base(res, scope).get(key)


def test_what_a_session_derived_from_the_world_is_not_kept_under_a_parent_it_then_creates() -> None:
    """A client lists the items of parent "a" before creating "a" (the world's five), then
    creates it: the scope's next integer id and its filter index start again from no fixtures."""
    from simulator.environments.resources import Resource
    from simulator.state.scopes import NO_FIXTURES
    from simulator.state.store import Session

    res = Resource("item", "/p/{p}/items", "/p/{p}/items/{id}", "id", "id", "integer", ("p",),
                   {"type": "object", "properties": {"id": {"type": "integer"}, "tag": STR}}, True)
    session, world = Session(), _FiveFixtures()
    assert session.next_integer_id(world, res, ("a",)) == 6
    assert [key for key, _ in session.select(world, res, ("a",), {"tag": "x"})] == ["1", "2", "3", "4", "5"]
    assert session.next_integer_id(NO_FIXTURES, res, ("a",)) == 1
    assert session.select(NO_FIXTURES, res, ("a",), {"tag": "x"}) == []
    session.put(res, ("a",), "1", {"id": 1, "tag": "x"})
    assert [key for key, _ in session.select(NO_FIXTURES, res, ("a",), {"tag": "x"})] == ["1"]
    assert session.next_integer_id(NO_FIXTURES, res, ("a",)) == 2

"""A POST that adds members to a collection by name (GitHub's add-labels to an issue:
``{"labels": ["bug"]}``, ``["bug"]`` or ``{"labels": [{"name": "bug"}]}``) keeps them, and answers
the collection; a DELETE documented to answer the members left answers them. Before, the add
answered one generated label under another name and stored nothing anyone asked for, and the
delete answered a list holding the label it had just removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.spec_api import INT, STR, answer, body, path_param, ref, spec
from tests.support.spec_api import SpecApi as Api

LABEL = {"type": "object", "required": ["id", "name"],
         "properties": {"id": INT, "name": STR, "color": STR, "description": STR}}
NAMES = {"oneOf": [
    {"type": "object", "properties": {"labels": {"type": "array", "items": STR}}},
    {"type": "array", "items": STR},
    {"type": "object", "properties": {"labels": {"type": "array", "items": {
        "type": "object", "required": ["name"], "properties": {"name": STR}}}}},
]}
ISSUE_LABELS = spec({
    "/repos/{repo}/issues/{issue}/labels": {
        "parameters": [path_param("repo"), path_param("issue", INT)],
        "get": {"operationId": "listLabelsOnIssue",
                "responses": answer("200", {"type": "array", "items": ref("Label")})},
        "post": {"operationId": "addLabels", "requestBody": body(NAMES),
                 "responses": answer("200", {"type": "array", "items": ref("Label")})},
        "put": {"operationId": "setLabels", "requestBody": body(NAMES),
                "responses": answer("200", {"type": "array", "items": ref("Label")})},
        "delete": {"operationId": "removeAllLabels", "responses": answer("204")},
    },
    "/runners/{runner}/labels": {  # GitHub's self-hosted runner: the labels come in a wrapper
        "parameters": [path_param("runner", INT)],
        "get": {"operationId": "listRunnerLabels", "responses": answer("200", ref("RunnerLabels"))},
        "put": {"operationId": "setRunnerLabels", "requestBody": body(
            {"type": "object", "required": ["labels"], "properties": {"labels": {"type": "array", "items": STR}}}),
            "responses": answer("200", ref("RunnerLabels"))},
        "delete": {"operationId": "removeAllRunnerLabels", "responses": answer("200", ref("RunnerLabels"))},
    },
    "/runners/{runner}/labels/{name}": {
        "parameters": [path_param("runner", INT), path_param("name")],
        "delete": {"operationId": "removeRunnerLabel", "responses": answer("200", ref("RunnerLabels"))},
    },
    "/repos/{repo}/issues/{issue}/labels/{name}": {
        "parameters": [path_param("repo"), path_param("issue", INT), path_param("name")],
        "delete": {"operationId": "removeLabel",
                   "responses": answer("200", {"type": "array", "items": ref("Label")})},
    },
    "/customers": {
        "get": {"operationId": "listCustomers", "responses": answer("200", {"type": "array", "items": ref("Customer")})},
        "delete": {"operationId": "deleteCustomersByEmail", "parameters": [  # DigitalOcean's volumes by name
            {"name": "email", "in": "query", "schema": STR}], "responses": answer("204")},
        "post": {"operationId": "createCustomer", "requestBody": body({"type": "object", "properties": {
            "email": STR, "expand": {"type": "array", "items": STR}}}),
            "responses": answer("200", ref("Customer"))},
    },
    "/customers/{id}": {
        "parameters": [path_param("id")],
        "get": {"operationId": "getCustomer", "responses": answer("200", ref("Customer"))},
    },
}, {"Label": LABEL, "RunnerLabels": {
    "type": "object", "required": ["total_count", "labels"], "properties": {
        "total_count": INT, "labels": {"type": "array", "items": {
            "type": "object", "required": ["name"], "properties": {"id": INT, "name": STR, "type": STR}}}}},
    "Customer": {"type": "object", "required": ["id"], "properties": {"id": STR, "email": STR}}}, title="members")


@pytest.fixture
def github(tmp_path: Path) -> Api:
    return Api(tmp_path, ISSUE_LABELS)


def names(listed: Any) -> list[str]:
    return [label["name"] for label in listed]


@pytest.mark.parametrize("sent", [{"labels": ["bug", "urgent"]}, ["bug", "urgent"],
                                  {"labels": [{"name": "bug"}, {"name": "urgent"}]}])
def test_labels_added_by_name_are_kept_and_the_issues_labels_answered(github: Api, sent: Any) -> None:
    before = names(github.ok("GET", "/repos/hello/issues/1/labels"))
    added = names(github.ok("POST", "/repos/hello/issues/1/labels", sent))
    assert added[:len(before)] == before and {"bug", "urgent"} <= set(added)
    assert names(github.ok("GET", "/repos/hello/issues/1/labels")) == added
    assert names(github.ok("GET", "/repos/hello/issues/2/labels")) == names(
        github.ok("GET", "/repos/hello/issues/2/labels")) and "urgent" not in names(
        github.ok("GET", "/repos/hello/issues/2/labels")), "another issue's labels are its own"


def test_adding_a_label_the_issue_has_adds_nothing(github: Api) -> None:
    first = names(github.ok("POST", "/repos/hello/issues/1/labels", ["bug"]))
    again = names(github.ok("POST", "/repos/hello/issues/1/labels", ["bug", "bug"]))
    assert first == again and again.count("bug") == 1


def test_removing_a_label_answers_the_labels_left(github: Api) -> None:
    github.ok("POST", "/repos/hello/issues/1/labels", ["bug", "urgent"])
    left = names(github.ok("DELETE", "/repos/hello/issues/1/labels/bug"))
    assert "bug" not in left and "urgent" in left
    assert names(github.ok("GET", "/repos/hello/issues/1/labels")) == left
    assert github.call("DELETE", "/repos/hello/issues/1/labels/bug").status == 404


def test_a_create_whose_body_holds_another_list_makes_one_record(github: Api) -> None:
    # a body with a list under a name that is not the collection's (Stripe's expand) is a create
    made = github.ok("POST", "/customers", {"expand": ["sources"]})
    assert isinstance(made, dict) and made["id"] != "sources"
    assert github.call("GET", "/customers/sources").status == 404
    assert github.ok("GET", f"/customers/{made['id']}") == made


@pytest.mark.parametrize("sent", [{"labels": []}, {"labels": ["ok", 3]}, {"labels": ["ok"], "color": "red"}])
def test_a_body_that_is_not_only_names_adds_no_label_by_name(github: Api, sent: Any) -> None:
    # bad input for add-by-name: an empty list, a number among the names, a second member beside them
    before = names(github.ok("GET", "/repos/hello/issues/1/labels"))
    found = github.call("POST", "/repos/hello/issues/1/labels", sent)
    assert found.status < 500, found.body
    after = names(github.ok("GET", "/repos/hello/issues/1/labels"))
    assert "ok" not in after and set(before) <= set(after)


def test_a_put_of_names_makes_them_the_issues_labels(github: Api) -> None:
    github.ok("POST", "/repos/hello/issues/1/labels", ["bug", "urgent"])
    assert names(github.ok("PUT", "/repos/hello/issues/1/labels", {"labels": ["urgent", "docs"]})) == ["urgent", "docs"]
    assert names(github.ok("GET", "/repos/hello/issues/1/labels")) == ["urgent", "docs"]
    assert github.call("DELETE", "/repos/hello/issues/1/labels/bug").status == 404, "bug was dropped by the set"
    assert github.ok("PUT", "/repos/hello/issues/1/labels", []) == [], "an empty set empties"
    assert github.ok("GET", "/repos/hello/issues/1/labels") == []


def test_a_delete_of_the_collection_removes_every_member(github: Api) -> None:
    other = names(github.ok("GET", "/repos/hello/issues/2/labels"))
    assert github.call("DELETE", "/repos/hello/issues/1/labels").status == 204
    assert github.ok("GET", "/repos/hello/issues/1/labels") == []
    assert names(github.ok("GET", "/repos/hello/issues/2/labels")) == other, "another issue keeps its labels"
    assert names(github.ok("POST", "/repos/hello/issues/1/labels", ["bug"])) == ["bug"]


def test_a_runners_labels_are_set_removed_and_cleared_in_their_wrapper(github: Api) -> None:
    made = github.ok("PUT", "/runners/7/labels", {"labels": ["gpu", "x64"]})
    assert names(made["labels"]) == ["gpu", "x64"] and made["total_count"] == 2
    left = github.ok("DELETE", "/runners/7/labels/gpu")
    assert names(left["labels"]) == ["x64"] and left["total_count"] == 1
    assert github.ok("DELETE", "/runners/7/labels") == {"labels": [], "total_count": 0}
    assert github.ok("GET", "/runners/7/labels") == {"labels": [], "total_count": 0}


def test_a_delete_of_the_collection_with_a_filter_removes_what_the_list_would_show(github: Api) -> None:
    listed = github.ok("GET", "/customers")
    email = listed[0]["email"]
    assert github.call("DELETE", f"/customers?email={email}").status == 204
    assert [c for c in github.ok("GET", "/customers") if c["email"] == email] == []
    assert len(github.ok("GET", "/customers")) == len(listed) - sum(c["email"] == email for c in listed)


def test_a_read_only_collection_is_not_cleared() -> None:
    # a basket's requests are read-only (any id reads one): its clear stays an action
    from simulator.environments.environment import load_environment
    from simulator.environments.resources import infer_resources

    env = load_environment("baskets")
    model = infer_resources(env.spec, env.overrides)
    assert model.bindings["delete_api_baskets_name_requests"].kind == "action"

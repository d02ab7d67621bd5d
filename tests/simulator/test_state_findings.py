"""One test per finding of issue 10 ("the simulator keeps what it is told"), each on a small spec
written here that reproduces the shape of the public API where it was found."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulator.environments.environment import load_environment
from simulator.messages import SimRequest
from simulator.service.simulator import Simulator
from tests.support.spec_api import INT, JSON, STR, answer, body, path_param, ref, spec
from tests.support.spec_api import SpecApi as Api


@pytest.fixture
def api(tmp_path: Path) -> Callable[[dict[str, Any]], Api]:
    return lambda document: Api(tmp_path, document)


# -- writes are read back -----------------------------------------------------------------------

DATA = {"type": "object", "properties": {"id": INT, "value": STR, "lat": {"type": "number"},
                                         "count": INT, "label": STR}}
DATA_IN = {"type": "object", "properties": {"value": STR, "lat": STR, "count": STR, "label": INT}}
FEED_DATA = spec({
    "/feeds/{feed_key}/data": {
        "parameters": [path_param("feed_key")],
        "get": {"operationId": "allData", "responses": answer("200", {"type": "array", "items": ref("Data")})},
        "post": {"operationId": "createData", "requestBody": body(ref("DataIn")),
                 "responses": answer("200", ref("Data"))},
    },
    "/feeds/{feed_key}/data/{id}": {
        "parameters": [path_param("feed_key"), path_param("id", INT)],
        "get": {"operationId": "getData", "responses": answer("200", ref("Data"))},
    },
}, {"Data": DATA, "DataIn": DATA_IN}, title="finding")


def test_a_written_field_is_stored_in_the_stored_schemas_type(api: Callable[..., Api]) -> None:
    """adafruit createData: `lat` sent as the string '37.591633' was stored as a made-up number."""
    feed = api(FEED_DATA)
    created = feed.call("POST", "/feeds/f1/data", {"value": "42", "lat": "37.591633", "count": "7", "label": 7})
    assert created.status == 200, created.body
    record = created.json()
    assert (record["lat"], record["count"], record["label"]) == (37.591633, 7, "7"), "converted without loss"
    assert feed.call("GET", f"/feeds/f1/data/{record['id']}").json() == record


def test_a_field_that_cannot_be_stored_as_sent_is_a_4xx_naming_it(api: Callable[..., Api]) -> None:
    feed = api(FEED_DATA)
    for bad, why in (({"lat": "north"}, "cannot be stored as number"), ({"count": "7.5"}, "as integer")):
        refused = feed.call("POST", "/feeds/f1/data", {"value": "x", **bad})
        field = next(iter(bad))
        assert refused.status == 422 and refused.content_type == "application/problem+json", refused.body
        problem = refused.json()
        assert problem["errors"][0]["name"] == field and why in problem["errors"][0]["message"], problem
        assert field in problem["detail"]
    listed = feed.call("GET", "/feeds/f1/data").json()
    assert all(item.get("value") != "x" for item in listed), "nothing was stored for a refused write"


BLOCK = {"type": "object", "properties": {"id": INT, "name": STR, "dashboard_id": STR}}
BLOCKS = spec({
    "/dashboards/{dashboard_id}/blocks": {
        "parameters": [path_param("dashboard_id")],
        "get": {"operationId": "allBlocks", "responses": answer("200", {"type": "array", "items": ref("Block")})},
        "post": {"operationId": "createBlock", "requestBody": body(ref("Block")),
                 "responses": answer("200", ref("Block"))},
    },
    "/dashboards/{dashboard_id}/blocks/{id}": {
        "parameters": [path_param("dashboard_id"), path_param("id", INT)],
        "get": {"operationId": "getBlock", "responses": answer("200", ref("Block"))},
        "put": {"operationId": "replaceBlock", "requestBody": body(ref("Block")),
                "responses": answer("200", ref("Block"))},
        "patch": {"operationId": "updateBlock", "requestBody": body(ref("Block")),
                  "responses": answer("200", ref("Block"))},
    },
}, {"Block": BLOCK}, title="finding")


def test_path_parameters_win_over_body_fields_on_every_write(api: Callable[..., Api]) -> None:
    """adafruit replaceBlock: path dashboard_id 'consumer-1190', body dashboard_id '37461' -> the
    body's value was stored (create applied the path, replace and update did not)."""
    blocks = api(BLOCKS)
    created = blocks.call("POST", "/dashboards/consumer-1190/blocks", {"name": "a", "dashboard_id": "37461"}).json()
    assert created["dashboard_id"] == "consumer-1190"
    item = f"/dashboards/consumer-1190/blocks/{created['id']}"
    for method in ("PUT", "PATCH"):
        written = blocks.call(method, item, {"id": 999, "name": method, "dashboard_id": "37461"})
        assert written.status == 200, written.body
        read = blocks.call("GET", item).json()
        assert (read["dashboard_id"], read["id"], read["name"]) == ("consumer-1190", created["id"], method)


# -- identity follows the API's addressing ------------------------------------------------------------

TAG = {"type": "object", "properties": {"name": STR, "resources": {"type": "object"}}}
CLUSTER = {"type": "object", "properties": {"id": {"type": "string", "format": "uuid", "readOnly": True},
                                            "name": STR, "region": STR}}
LINKS = {"type": "object", "properties": {"pages": {"type": "object"}}}
META = {"type": "object", "properties": {"total": INT}}
ENVELOPED = spec({
    "/v2/tags": {
        "get": {"operationId": "listTags", "responses": answer("200", {
            "type": "object", "properties": {"tags": {"type": "array", "items": ref("Tag")}, "links": LINKS,
                                             "meta": META}})},
        "post": {"operationId": "createTag", "requestBody": body(ref("Tag")),
                 "responses": answer("201", {"type": "object", "properties": {"tag": ref("Tag")}})},
    },
    "/v2/tags/{tag_id}": {
        "parameters": [path_param("tag_id")],
        "get": {"operationId": "getTag",
                "responses": answer("200", {"type": "object", "properties": {"tag": ref("Tag")}})},
        "delete": {"operationId": "deleteTag", "responses": answer("204")},
    },
    "/v2/clusters": {
        "get": {"operationId": "listClusters", "responses": answer("200", {
            "type": "object", "properties": {"kubernetes_clusters": {"type": "array", "items": ref("Cluster")},
                                             "links": LINKS, "meta": META}})},
        "post": {"operationId": "createCluster",
                 "requestBody": body({"type": "object", "properties": {"kubernetes_cluster": ref("Cluster")}}),
                 "responses": answer("201", {"type": "object", "properties": {"kubernetes_cluster": ref("Cluster")}})},
    },
    "/v2/clusters/{cluster_id}": {
        "parameters": [path_param("cluster_id", {"type": "string", "format": "uuid"})],
        "get": {"operationId": "getCluster", "responses": answer("200", {
            "type": "object", "properties": {"kubernetes_cluster": ref("Cluster")}})},
    },
}, {"Tag": TAG, "Cluster": CLUSTER}, title="finding")


def test_a_record_in_an_envelope_is_stored_and_read_by_its_name(api: Callable[..., Api]) -> None:
    """DigitalOcean: POST /v2/tags -> 201 {"tag": {"name": "awesome"}}, then GET /v2/tags/awesome -> 404."""
    do = api(ENVELOPED)
    created = do.call("POST", "/v2/tags", {"name": "awesome"})
    assert created.status == 201 and created.json()["tag"]["name"] == "awesome", created.body
    read = do.call("GET", "/v2/tags/awesome")
    assert read.status == 200 and read.json()["tag"]["name"] == "awesome", read.body
    assert "awesome" in [t["name"] for t in do.call("GET", "/v2/tags").json()["tags"]]
    assert do.call("DELETE", "/v2/tags/awesome").status == 204
    assert do.call("GET", "/v2/tags/awesome").status == 404


def test_an_enveloped_create_appears_in_the_list_and_reads(api: Callable[..., Api]) -> None:
    """DigitalOcean: a created Kubernetes cluster ({"kubernetes_cluster": {...}} in and out) never
    appeared in the list ({"kubernetes_clusters": [...], "links": ..., "meta": ...})."""
    do = api(ENVELOPED)
    created = do.call("POST", "/v2/clusters", {"kubernetes_cluster": {"name": "prod", "region": "nyc1"}})
    assert created.status == 201, created.body
    cluster = created.json()["kubernetes_cluster"]
    assert (cluster["name"], cluster["region"]) == ("prod", "nyc1")
    listed = do.call("GET", "/v2/clusters").json()["kubernetes_clusters"]
    assert cluster in listed
    for item in listed:  # every listed item reads through the item path
        assert do.call("GET", f"/v2/clusters/{item['id']}").json()["kubernetes_cluster"] == item


ORG = {"type": "object", "properties": {"id": INT, "username": STR, "full_name": STR}}
USER_IN = {"type": "object", "required": ["username", "password"],
           "properties": {"username": STR, "email": STR, "password": STR}}
USER = {"type": "object", "properties": {"id": INT, "login": STR, "email": STR}}
GITEA = spec({
    "/orgs": {
        "get": {"operationId": "orgGetAll", "responses": answer("200", {"type": "array", "items": ref("Org")})},
        "post": {"operationId": "orgCreate", "requestBody": body(ref("Org")), "responses": answer("201", ref("Org"))},
    },
    "/orgs/{org}": {
        "parameters": [path_param("org")],
        "get": {"operationId": "orgGet", "responses": answer("200", ref("Org"))},
        "delete": {"operationId": "orgDelete", "responses": answer("204")},
    },
    "/admin/users": {
        "post": {"operationId": "adminCreateUser", "requestBody": body(ref("CreateUserOption")),
                 "responses": answer("201", {"type": "object", "properties": {
                     "id": INT, "login": STR, "email": STR, "username": STR, "password": STR}})},
    },
    "/users/{username}": {
        "parameters": [path_param("username")],
        "get": {"operationId": "userGet", "responses": answer("200", {"type": "object", "properties": {
            "id": INT, "login": STR, "email": STR, "username": STR, "password": STR}})},
    },
    "/user/following": {
        "get": {"operationId": "userCurrentListFollowing",
                "responses": answer("200", {"type": "array", "items": ref("User")})},
    },
    "/user/following/{username}": {
        "parameters": [path_param("username")],
        "get": {"operationId": "userCurrentCheckFollowing", "responses": {**answer("204"), **answer("404")}},
        "put": {"operationId": "userCurrentPutFollow", "summary": "Follow a user", "responses": answer("204")},
        "delete": {"operationId": "userCurrentDeleteFollow", "responses": answer("204")},
    },
    "/activitypub/user-id/{user-id}": {
        "parameters": [path_param("user-id", INT)],
        "get": {"operationId": "activitypubPerson", "responses": answer("200", {
            "type": "object", "properties": {"id": INT, "type": STR}})},
    },
    "/repos/{owner}/{repo}/git/commits/{sha}": {
        "parameters": [path_param("owner"), path_param("repo"), path_param("sha")],
        "get": {"operationId": "repoGetSingleCommit", "responses": answer("200", {
            "type": "object", "properties": {"sha": STR}})},
    },
    "/repos/{owner}/{repo}/git/commits/{sha}.{diffType}": {
        "parameters": [path_param("owner"), path_param("repo"), path_param("sha"),
                       path_param("diffType", {"type": "string", "enum": ["diff", "patch"]})],
        "get": {"operationId": "repoDownloadCommitDiffOrPatch",
                "responses": {"200": {"description": "ok", "content": {"text/plain": {"schema": STR}}}}},
    },
}, {"Org": ORG, "User": USER, "CreateUserOption": USER_IN}, title="finding")


def test_an_item_is_found_by_the_value_its_path_uses(api: Callable[..., Api]) -> None:
    """gitea: POST /orgs -> {"username": "acme-labs", "id": 3611}; GET /orgs/acme-labs -> 404 while
    GET /orgs/3611 -> 200. Both address the org now."""
    gitea = api(GITEA)
    created = gitea.call("POST", "/orgs", {"username": "acme-labs", "full_name": "Acme"})
    assert created.status == 201, created.body
    org = created.json()
    assert gitea.call("GET", "/orgs/acme-labs").json() == org
    assert gitea.call("GET", f"/orgs/{org['id']}").json() == org
    for listed in gitea.call("GET", "/orgs").json():  # every listed org reads by its username
        assert gitea.call("GET", f"/orgs/{listed['username']}").status == 200
    assert gitea.call("DELETE", "/orgs/acme-labs").status == 204
    assert gitea.call("GET", "/orgs/acme-labs").status == 404
    assert gitea.call("GET", f"/orgs/{org['id']}").status == 404


def test_a_password_is_stored_but_never_echoed(api: Callable[..., Api]) -> None:
    """gitea: POST /admin/users echoed the password back (the spec does not mark it writeOnly)."""
    gitea = api(GITEA)
    created = gitea.call("POST", "/admin/users", {"username": "ada", "email": "ada@example.com",
                                                  "password": "hunter2"})
    assert created.status == 201, created.body
    assert b"hunter2" not in created.body and "password" not in created.json()
    assert created.json()["username"] == "ada"
    read = gitea.call("GET", "/users/ada")
    assert read.status == 200 and b"hunter2" not in read.body
    stored = gitea.sim.session().overlay
    assert "hunter2" in json.dumps(stored), "stored, for whatever the API does with it"


def test_a_put_on_an_absent_membership_creates_it(api: Callable[..., Api]) -> None:
    """gitea: PUT /user/following/{u} answered 404 for a user not yet followed."""
    gitea = api(GITEA)
    assert gitea.call("GET", "/user/following/octocat").status == 404
    assert gitea.call("PUT", "/user/following/octocat").status == 204
    assert gitea.call("GET", "/user/following/octocat").status == 204
    assert "octocat" in [u["login"] for u in gitea.call("GET", "/user/following").json()]
    assert gitea.call("DELETE", "/user/following/octocat").status == 204
    assert gitea.call("GET", "/user/following/octocat").status == 404


def test_a_hyphenated_path_parameter_is_bound(api: Callable[..., Api]) -> None:
    """gitea: GET /activitypub/user-id/1 -> 400 "required path parameter 'user-id' is missing"."""
    response = api(GITEA).call("GET", "/activitypub/user-id/1")
    assert response.status == 200, response.body


def test_a_literal_suffix_beats_a_bare_parameter(api: Callable[..., Api]) -> None:
    """gitea: .../commits/{sha}.{diffType} was answered by the commit route."""
    gitea = api(GITEA)
    diff = gitea.call("GET", "/repos/o/r/git/commits/abc123.diff")
    assert diff.status == 200 and diff.content_type.startswith("text/plain"), diff.headers
    commit = gitea.call("GET", "/repos/o/r/git/commits/abc123")
    assert commit.status == 200 and commit.content_type == "application/json"


PREFIX = {"type": "object", "properties": {"id": STR, "name": STR, "location": STR,
                                           "properties": {"type": "object", "properties": {"prefixLength": INT}}}}
AZURE_ITEM = "/subscriptions/{subscriptionId}/publicIPPrefixes/{publicIpPrefixName}"
AZURE = spec({
    "/subscriptions/{subscriptionId}/publicIPPrefixes": {
        "parameters": [path_param("subscriptionId")],
        "get": {"operationId": "PublicIPPrefixes_List", "responses": answer("200", {
            "type": "object", "properties": {"value": {"type": "array", "items": ref("PublicIPPrefix")},
                                             "nextLink": STR}})},
    },
    AZURE_ITEM: {
        "parameters": [path_param("subscriptionId"), path_param("publicIpPrefixName")],
        "get": {"operationId": "PublicIPPrefixes_Get", "responses": answer("200", ref("PublicIPPrefix"))},
        "put": {"operationId": "PublicIPPrefixes_CreateOrUpdate", "description": "Creates or updates a prefix.",
                "requestBody": body(ref("PublicIPPrefix")),
                "responses": {**answer("200", ref("PublicIPPrefix")), **answer("201", ref("PublicIPPrefix"))}},
        "delete": {"operationId": "PublicIPPrefixes_Delete", "responses": {**answer("200"), **answer("204")}},
    },
}, {"PublicIPPrefix": PREFIX}, title="finding")


def test_every_listed_item_reads_by_the_name_its_path_takes(api: Callable[..., Api]) -> None:
    """Azure: a name the list shows -> 404 on GET by that name."""
    azure = api(AZURE)
    listed = azure.call("GET", "/subscriptions/s1/publicIPPrefixes").json()["value"]
    assert listed
    for item in listed:
        read = azure.call("GET", f"/subscriptions/s1/publicIPPrefixes/{item['name']}")
        assert read.status == 200 and read.json() == item


def test_a_put_documented_as_create_or_update_creates(api: Callable[..., Api]) -> None:
    """Azure: PUT .../publicIPPrefixes/prefix1 -> 404 for a new prefix."""
    azure = api(AZURE)
    item = "/subscriptions/s1/publicIPPrefixes/prefix1"
    created = azure.call("PUT", item, {"location": "westus", "properties": {"prefixLength": 28}})
    assert created.status == 201, created.body
    assert created.json()["name"] == "prefix1" and created.json()["location"] == "westus"
    updated = azure.call("PUT", item, {"location": "eastus"})
    assert updated.status == 200 and updated.json()["location"] == "eastus"
    assert azure.call("GET", item).json()["location"] == "eastus"
    names = [p["name"] for p in azure.call("GET", "/subscriptions/s1/publicIPPrefixes").json()["value"]]
    assert names.count("prefix1") == 1


TAX = {"type": "object", "required": ["uuid", "label", "percentage"],
       "properties": {"uuid": {"type": "string", "format": "uuid"}, "label": STR,
                      "percentage": {"type": "number"}, "default": {"type": "boolean"}}}
IZETTLE = spec({
    "/v1/taxes": {
        "get": {"operationId": "getTaxRates", "responses": answer("200", {
            "type": "object", "properties": {"taxRates": {"type": "array", "items": ref("TaxRate")}}})},
        "post": {"operationId": "createTaxRates", "requestBody": body({
            "type": "object", "properties": {"taxRates": {"type": "array", "items": ref("TaxRate")}}}),
            "responses": answer("201", {"type": "object", "properties": {
                "taxRates": {"type": "array", "items": ref("TaxRate")}}})},
    },
    "/v1/taxes/{taxRateUuid}": {
        "parameters": [path_param("taxRateUuid", {"type": "string", "format": "uuid"})],
        "get": {"operationId": "getTaxRate", "responses": answer("200", ref("TaxRate"))},
    },
    "/products": {
        "post": {"operationId": "createProduct", "requestBody": body(ref("Product")),
                 "responses": answer("201", ref("Product"))},
    },
    "/products/{id}": {
        "parameters": [path_param("id")],
        "get": {"operationId": "getProduct", "responses": answer("200", ref("Product"))},
    },
    "/products/v2": {
        "get": {"operationId": "getAllProductsV2",
                "responses": answer("200", {"type": "array", "items": ref("Product")})},
    },
    "/products/v2/{id}": {
        "parameters": [path_param("id")],
        "put": {"operationId": "updateProduct", "requestBody": body(ref("Product")),
                "responses": answer("200", ref("Product"))},
    },
}, {"TaxRate": TAX, "Product": {"type": "object", "properties": {"id": STR, "name": STR}}}, title="finding")

SINGLE_TAX = spec({
    "/v1/taxes": {"post": {"operationId": "createTaxRate", "requestBody": body(ref("TaxRate")),
                           "responses": answer("201", ref("TaxRate"))}},
    "/v1/taxes/{taxRateUuid}": {
        "parameters": [path_param("taxRateUuid", {"type": "string", "format": "uuid"})],
        "get": {"operationId": "getTaxRate", "responses": answer("200", ref("TaxRate"))},
    },
}, {"TaxRate": TAX}, title="finding")


def test_a_client_supplied_id_is_kept_and_the_documented_shape_returned(api: Callable[..., Api]) -> None:
    """izettle taxes: the create ignored the client's uuid and answered another shape."""
    izettle = api(SINGLE_TAX)
    uuid = "0b46a0c8-35b1-11ef-9d58-8f2d1a3e7b10"
    created = izettle.call("POST", "/v1/taxes", {"uuid": uuid, "label": "VAT", "percentage": 25})
    assert created.status == 201, created.body
    assert created.json() == {"uuid": uuid, "label": "VAT", "percentage": 25}, "as sent, in the TaxRate shape"
    assert izettle.call("GET", f"/v1/taxes/{uuid}").json() == created.json()


def test_one_resource_under_two_paths_shares_one_store(api: Callable[..., Api]) -> None:
    """izettle: /products/v2/{id} and /products/{id} were kept as different collections."""
    izettle = api(IZETTLE)
    created = izettle.call("POST", "/products", {"id": "p-1", "name": "Mug"}).json()
    assert izettle.call("PUT", "/products/v2/p-1", {"name": "Big mug"}).status == 200
    assert izettle.call("GET", "/products/p-1").json() == {**created, "name": "Big mug"}
    assert "p-1" in [p["id"] for p in izettle.call("GET", "/products/v2").json()]


def test_the_shipped_baskets_share_one_store_under_api_and_bare_paths() -> None:
    sim = Simulator(load_environment("baskets"))
    auth = (("authorization", "secret"),)
    created = sim.handle(SimRequest("POST", "/api/baskets/shared1", (), (*JSON, *auth), b"{}"))
    assert created.status == 201, created.body
    assert sim.handle(SimRequest("GET", "/baskets/shared1", (), auth)).status == 200


CHANNEL = spec({
    "/v1/{name}": {
        "parameters": [path_param("name")],
        "get": {"operationId": "getEntitlement", "responses": answer("200", {
            "type": "object", "properties": {"name": STR}})},
    },
    "/v1/{name}:activate": {
        "parameters": [path_param("name")],
        "post": {"operationId": "activateEntitlement", "responses": answer("200", {
            "type": "object", "properties": {"done": {"type": "boolean"}}})},
    },
    "/v1/{name}:suspend": {
        "parameters": [path_param("name")],
        "post": {"operationId": "suspendEntitlement", "responses": answer("200", {
            "type": "object", "properties": {"done": {"type": "boolean"}}})},
    },
}, title="finding")


def test_a_verb_suffix_after_a_parameter_routes(api: Callable[..., Api]) -> None:
    """cloudchannel: POST /v1/e1:activate -> 405 (a bare {name} segment won), 15 of 43 operations
    unreachable."""
    channel = api(CHANNEL)
    for verb in ("activate", "suspend"):
        response = channel.call("POST", f"/v1/e1:{verb}")
        assert response.status == 200 and set(response.json()) <= {"done"}, response.body
    assert channel.call("GET", "/v1/e1").status == 200
    wrong = channel.call("DELETE", "/v1/e1:activate")
    assert wrong.status == 405 and dict(wrong.headers)["allow"] == "POST"


def test_routing_keeps_the_hot_path_deterministic(api: Callable[..., Api]) -> None:
    """Same spec, seed and requests: the same bytes from a fresh simulator."""
    runs = []
    for _ in range(2):
        gitea = api(GITEA)
        runs.append([gitea.call(m, p, d).body for m, p, d in (
            ("POST", "/orgs", {"username": "acme"}), ("GET", "/orgs/acme", None),
            ("PUT", "/user/following/ada", None), ("GET", "/user/following", None))])
    assert runs[0] == runs[1]


def _catalogue(version: str, contact: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"operationId": f"list{version}", "responses": answer("200", {
        "type": "array", "items": {"type": "object", "properties": {"id": STR, "contact": contact}}})}}


SHARED_DIFFERENT_SCHEMAS = spec({"/products": _catalogue("V1", STR),
                                 "/v2/products": _catalogue("V2", {"type": "string", "format": "email"})}, title="finding")


def test_a_shared_store_reads_the_same_whichever_path_a_client_reads_first(api: Callable[..., Api]) -> None:
    """digitalocean/gitlab/discourse: two paths of one store whose schemas differ (here a format;
    in discourse a nullable name) got the fixtures of whichever path was read first in the
    process, so a sample's responses depended on earlier samples (--workers 2 != --workers 1)."""
    first = api(SHARED_DIFFERENT_SCHEMAS)
    other_first = api(SHARED_DIFFERENT_SCHEMAS)
    other_first.call("GET", "/v2/products")
    for path in ("/products", "/v2/products"):
        assert first.call("GET", path).body == other_first.call("GET", path).body, path
    # made from the store's own resource (/products: any string), which a v2 read no longer changes
    assert not any("@" in item["contact"] for item in first.call("GET", "/products").json())


# -- a create whose record has no id field (extendsclass json-storage ``POST /bin``) -------------

BINS = spec({
    "/bin": {"post": {"operationId": "post_bin", "responses": answer("200", ref("CreateStatus"))}},
    "/bin/{id}": {
        "parameters": [path_param("id")],
        "get": {"operationId": "get_bin", "responses": {**answer("200", {"type": "object"}), **answer("404")}},
        "delete": {"operationId": "delete_bin", "responses": answer("200", ref("Status"))},
    },
}, {"CreateStatus": {"type": "object", "properties": {"id": STR, "status": INT, "uri": STR}},
    "Status": {"type": "object", "properties": {"status": INT}}}, title="finding")


def test_a_create_answers_the_key_of_a_record_without_an_id_field_and_it_reads(api: Callable[..., Api]) -> None:
    bins = api(BINS)
    created = bins.call("POST", "/bin")
    assert created.status == 200, created.body
    new_id = orjson.loads(created.body)["id"]  # was {}: nothing named the bin it made
    assert isinstance(new_id, str) and new_id
    assert bins.call("GET", f"/bin/{new_id}").status == 200
    assert bins.call("DELETE", f"/bin/{new_id}").status == 200
    assert bins.call("GET", f"/bin/{new_id}").status == 404
    second = orjson.loads(bins.call("POST", "/bin").body)["id"]
    assert second != new_id and bins.call("GET", f"/bin/{second}").status == 200


# -- a record schema no value satisfies (powerdns-auth 3.1 ``searchData``) ----------------------

ZONE = {"type": "object", "additionalProperties": False, "properties": {"name": STR, "zone_id": STR}}
RECORD = {"type": "object", "additionalProperties": False, "properties": {"name": STR, "ttl": INT}}
# only {} passes the outer additionalProperties, and {} matches both branches: oneOf fails
SEARCH_RESULT = {"type": "object", "additionalProperties": False, "oneOf": [ref("Zone"), ref("Record")]}
SEARCH = spec({
    "/servers/{server_id}/search-data": {
        "parameters": [path_param("server_id")],
        "get": {"operationId": "searchData", "parameters": [{"name": "q", "in": "query", "required": True,
                                                             "schema": STR}],
                "responses": answer("200", {"type": "array", "items": ref("SearchResult")})},
    },
}, {"Zone": ZONE, "Record": RECORD, "SearchResult": SEARCH_RESULT}, title="finding")


def test_a_collection_whose_records_no_value_satisfies_lists_none(api: Callable[..., Api]) -> None:
    search = api(SEARCH)
    for server in ("localhost", "other"):
        found = search.sim.handle(SimRequest("GET", f"/servers/{server}/search-data", (("q", "a"),), (), b""))
        assert found.status == 200, found.body  # was a 500: every fixture failed to generate
        assert orjson.loads(found.body) == []


# -- a response documented under a media range (xkcd: ``*/*``) ------------------------------------

COMICS = spec({
    "/{comicId}/info.0.json": {
        "parameters": [path_param("comicId", {"type": "number"})],
        "get": {"operationId": "comic", "responses": {"200": {"description": "ok", "content": {
            "*/*": {"schema": {"type": "object", "properties": {"title": STR, "num": INT}}}}}}},
    },
}, title="finding")


def test_a_response_documented_as_any_type_says_it_is_json(api: Callable[..., Api]) -> None:
    found = api(COMICS).call("GET", "/42/info.0.json")
    assert found.status == 200
    # was "*/*", a range for Accept, not a type: clients (and the generator's facts) took it for no JSON
    assert dict(found.headers)["content-type"] == "application/json"
    assert isinstance(orjson.loads(found.body), dict)


def test_an_answer_no_value_satisfies_is_a_500_that_names_the_spec_not_a_traceback(
        api: Callable[..., Api], caplog: pytest.LogCaptureFixture) -> None:
    # bad input: the spec itself, whose one answer for this POST no value satisfies (as SEARCH's items)
    broken = api(spec({"/servers/{server_id}/summary": {
        "parameters": [path_param("server_id")],
        "post": {"operationId": "summarise", "responses": answer("200", ref("SearchResult"))}}},
        {"Zone": ZONE, "Record": RECORD, "SearchResult": SEARCH_RESULT}))
    with caplog.at_level("ERROR", logger="simulator"):
        found = broken.call("POST", "/servers/localhost/summary")
    assert found.status == 500
    problem = orjson.loads(found.body)
    assert problem["title"] == "No valid response" and "oneOf" in problem["detail"]
    assert [r.exc_info for r in caplog.records] == [None]  # one line in the log, no traceback
    assert "admits no value" in caplog.records[0].getMessage()

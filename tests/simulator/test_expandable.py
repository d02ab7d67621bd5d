"""Stripe's expandable fields (``x-expansionResources``): an id unless a request asks to expand
(``expand[]``), then the object it names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simulator.datagen.exactness import exact_cost
from simulator.datagen.generate import compile_schema
from simulator.environments.environment import load_environment
from simulator.messages import SimRequest
from simulator.service.expansion import MAX_PATHS, requested_paths
from simulator.service.simulator import Simulator
from simulator.spec.jsonschema.keywords import EXPANDABLE

CUSTOMER = {"type": "object", "required": ["id", "name"],
            "properties": {"id": {"type": "string", "maxLength": 5000}, "name": {"type": "string"}}}
CHARGE = {"type": "object", "required": ["id", "customer"], "properties": {
    "id": {"type": "string", "maxLength": 5000},
    "customer": {"anyOf": [{"maxLength": 5000, "type": "string"}, {"$ref": "#/components/schemas/customer"}],
                 "nullable": True,
                 "x-expansionResources": {"oneOf": [{"$ref": "#/components/schemas/customer"}]}}}}


def _spec(tmp_path: Path) -> Path:
    spec = {"openapi": "3.0.0", "info": {"title": "charges", "version": "1"}, "paths": {
        "/v1/charges/{charge}": {"get": {"operationId": "GetCharge", "parameters": [
            {"name": "charge", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/charge"}}}}}}}},
        "components": {"schemas": {"charge": CHARGE, "customer": CUSTOMER}}}
    path = tmp_path / "charges.json"
    path.write_text(json.dumps(spec))
    return path


def test_an_expandable_field_is_marked_and_generated_as_its_id(tmp_path: Path) -> None:
    env = load_environment(str(_spec(tmp_path)))
    schema = env.spec.operation("GetCharge").responses[0].content["application/json"]
    charge = schema["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    inner = charge["properties"]["customer"]["anyOf"][0]  # nullable wraps it: anyOf [the field, null]
    assert inner[EXPANDABLE] is True and "x-expansionResources" not in json.dumps(schema)
    compiled = compile_schema(schema)
    values = [compiled.generate(f"s{i}", complete=True)["customer"] for i in range(60)]
    assert all(value is None or isinstance(value, str) for value in values)  # never the expanded object
    assert any(isinstance(value, str) for value in values)
    # a fixed order with an exact first branch: the field is exact (the walk may skip it when asked)
    assert exact_cost(compiled._plan, charge["properties"]["customer"], {}) == 2


def test_without_the_extension_the_walk_still_expands_some(tmp_path: Path) -> None:
    # the same field without x-expansionResources: a plain anyOf, whose branches the seed orders
    plain = json.loads(json.dumps(CHARGE))
    del plain["properties"]["customer"]["x-expansionResources"]
    path = _spec(tmp_path)
    spec = json.loads(path.read_text())
    spec["components"]["schemas"]["charge"] = plain
    path.write_text(json.dumps(spec))
    schema = load_environment(str(path)).spec.operation("GetCharge").responses[0].content["application/json"]
    assert EXPANDABLE not in json.dumps(schema)
    compiled = compile_schema(schema)
    values = [compiled.generate(f"s{i}", complete=True)["customer"] for i in range(60)]
    assert any(isinstance(value, dict) for value in values)


# -- expand[]: the request asks, the response carries the object ----------------------------------

def _store_spec(tmp_path: Path) -> Path:
    """Customers (a collection), charges naming one, and invoices naming a charge: every read and
    list takes ``expand``, as Stripe's do."""
    expand = {"name": "expand", "in": "query", "required": False, "style": "deepObject", "explode": True,
              "schema": {"type": "array", "items": {"type": "string", "maxLength": 5000}}}

    def item(name: str, schema: str) -> dict[str, object]:
        return {"get": {"operationId": f"Get{schema}", "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}, expand],
            "responses": {"200": {"description": "ok", "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{schema}"}}}}}}}

    def listed(schema: str) -> dict[str, object]:
        return {"type": "object", "required": ["data"], "properties": {
            "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}}}

    invoice = {"type": "object", "required": ["id", "charge"], "properties": {
        "id": {"type": "string", "maxLength": 5000},
        "charge": {"anyOf": [{"maxLength": 5000, "type": "string"}, {"$ref": "#/components/schemas/charge"}],
                   "x-expansionResources": {"oneOf": [{"$ref": "#/components/schemas/charge"}]}}}}
    spec = {"openapi": "3.0.0", "info": {"title": "store", "version": "1"}, "paths": {
        "/v1/customers": {
            "get": {"operationId": "ListCustomers", "parameters": [expand], "responses": {"200": {
                "description": "ok", "content": {"application/json": {"schema": listed("customer")}}}}},
            "post": {"operationId": "PostCustomers", "requestBody": {"content": {"application/json": {
                "schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}},
                "responses": {"200": {"description": "ok", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/customer"}}}}}}},
        "/v1/customers/{customer}": item("customer", "customer"),
        "/v1/charges": {
            "get": {"operationId": "ListCharges", "parameters": [expand], "responses": {"200": {
                "description": "ok", "content": {"application/json": {"schema": listed("charge")}}}}},
            "post": {"operationId": "PostCharges", "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "required": ["customer"], "properties": {"customer": {"type": "string"}}}}}},
                "responses": {"200": {"description": "ok", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/charge"}}}}}}},
        "/v1/charges/{charge}": item("charge", "charge"),
        "/v1/invoices/{invoice}": item("invoice", "invoice"),
    }, "components": {"schemas": {"charge": CHARGE, "customer": CUSTOMER, "invoice": invoice}}}
    path = tmp_path / "store.json"
    path.write_text(json.dumps(spec))
    return path


def _get(sim: Simulator, path: str, *query: tuple[str, str], session: str = "s") -> Any:
    response = sim.handle(SimRequest("GET", path, query), session)
    assert response.status == 200, response.body
    return json.loads(response.body)


def _post(sim: Simulator, path: str, body: dict[str, Any], session: str = "s") -> Any:
    response = sim.handle(SimRequest("POST", path, (), (("content-type", "application/json"),),
                                     json.dumps(body).encode()), session)
    assert response.status in (200, 201), response.body
    return json.loads(response.body)


def test_expand_answers_the_object_a_field_names_and_the_client_made_it(tmp_path: Path) -> None:
    sim = Simulator(load_environment(str(_store_spec(tmp_path))))
    fixture = next(c for c in _get(sim, "/v1/charges")["data"] if isinstance(c["customer"], str))
    assert isinstance(_get(sim, f"/v1/charges/{fixture['id']}")["customer"], str)  # not asked: the id
    # a fixture charge names a customer id of its own: it expands to an object with that id
    expanded = _get(sim, f"/v1/charges/{fixture['id']}", ("expand[]", "customer"))["customer"]
    assert isinstance(expanded, dict) and expanded["id"] == fixture["customer"] and "name" in expanded
    # a charge naming a customer the session made expands to that customer, as a read shows it
    customer = _post(sim, "/v1/customers", {"name": "Ada Lovelace"})
    charge = _post(sim, "/v1/charges", {"customer": customer["id"]})
    assert charge["customer"] == customer["id"]
    state = sim.state_hash("s")
    shown = _get(sim, f"/v1/charges/{charge['id']}", ("expand[]", "customer"))["customer"]
    assert shown == _get(sim, f"/v1/customers/{customer['id']}") and shown["name"] == "Ada Lovelace"
    assert sim.state_hash("s") == state  # expanding reads: the state hash stays


def test_expand_reaches_into_lists_and_expanded_objects(tmp_path: Path) -> None:
    sim = Simulator(load_environment(str(_store_spec(tmp_path))))
    listed = _get(sim, "/v1/charges", ("expand[0]", "data.customer"))["data"]
    plain = _get(sim, "/v1/charges")["data"]
    # only the named fields change: the same charges, each customer id now its customer
    assert [{**c, "customer": None} for c in listed] == [{**c, "customer": None} for c in plain]
    assert any(isinstance(c["customer"], str) for c in plain)
    for expanded, was in zip(listed, plain, strict=True):
        assert expanded["customer"] == was["customer"] if was["customer"] is None else \
            expanded["customer"]["id"] == was["customer"]
    charge = _get(sim, "/v1/invoices/in_1", ("expand[]", "charge"))["charge"]
    assert isinstance(charge, dict) and isinstance(charge["customer"], str)
    nested = _get(sim, "/v1/invoices/in_1", ("expand[]", "charge.customer"))["charge"]
    assert nested == {**charge, "customer": nested["customer"]}  # the same charge, its customer expanded
    assert isinstance(nested["customer"], dict) and nested["customer"]["id"] == charge["customer"]
    # the same request gives the same bytes, in a fresh simulator too
    again = Simulator(load_environment(str(_store_spec(tmp_path))))
    first = sim.handle(SimRequest("GET", "/v1/invoices/in_1", (("expand[]", "charge.customer"),)), "t").body
    assert again.handle(SimRequest("GET", "/v1/invoices/in_1", (("expand[]", "charge.customer"),)), "t").body == first


@pytest.mark.parametrize(("asked", "why"), [
    (("expand[]", "nope"), "This property cannot be expanded (nope)."),  # no such field
    (("expand[]", "id"), "This property cannot be expanded (id)."),  # a field that does not expand
    (("expand[]", "id.customer"), "This property cannot be expanded (id.customer)."),  # past no object
    (("expand[]", "customer.nope"), "This property cannot be expanded (customer.nope)."),  # a customer has none
    (("expand[]", "a.b.c.d.e"), "You cannot expand more than 4 levels of a property (a.b.c.d.e)."),
    (("expand[]", ""), "This property cannot be expanded ()."),  # empty
    (("expand[]", "customer..id"), "This property cannot be expanded (customer..id)."),
])
def test_an_expand_the_response_cannot_take_is_refused_as_stripe_refuses_it(
        tmp_path: Path, asked: tuple[str, str], why: str) -> None:
    sim = Simulator(load_environment(str(_store_spec(tmp_path))))
    charge = _get(sim, "/v1/charges")["data"][0]["id"]
    odd = sim.handle(SimRequest("GET", f"/v1/charges/{charge}", (("expand[]", "customer"), asked)), "s")
    assert odd.status == 400, (asked, odd.body)
    problem = json.loads(odd.body)
    assert problem["detail"] == why and problem["errors"][0]["in"] == "query" and problem["errors"][0]["name"] == "expand"


def test_a_refused_expand_on_a_write_writes_nothing(tmp_path: Path) -> None:
    sim = Simulator(load_environment(str(_store_spec(tmp_path))))
    before, listed = sim.state_hash("s"), _get(sim, "/v1/charges")["data"]
    body = sim.handle(SimRequest("POST", "/v1/charges", (), (("content-type", "application/json"),),
                                 json.dumps({"customer": "cus_1", "expand": ["nope"]}).encode()), "s")
    assert body.status == 400 and json.loads(body.body)["errors"][0] == {
        "in": "body", "name": "expand", "pointer": "/expand", "message": "This property cannot be expanded (nope)."}
    assert sim.state_hash("s") == before and _get(sim, "/v1/charges")["data"] == listed
    # where the response marks no field expandable (a customer here), nothing is refused
    made = sim.handle(SimRequest("POST", "/v1/customers", (), (("content-type", "application/json"),),
                                 json.dumps({"name": "Ada", "expand": ["name"]}).encode()), "s")
    assert made.status == 200 and json.loads(made.body)["name"] == "Ada"


def test_an_expand_the_response_allows_is_answered_whatever_the_value_holds(tmp_path: Path) -> None:
    sim = Simulator(load_environment(str(_store_spec(tmp_path))))
    # a list's items take the path; a field that holds no id (a null customer) stays as it is
    assert _get(sim, "/v1/charges", ("expand[]", "data.customer"))
    # an expanded object's own expandable field, as deep as four fields
    assert isinstance(_get(sim, "/v1/invoices/in_1", ("expand[]", "charge.customer"))["charge"]["customer"], dict)
    # not read as an expand at all (no index): the request is answered as if it had none
    charge = _get(sim, "/v1/charges")["data"][0]["id"]
    plain = sim.handle(SimRequest("GET", f"/v1/charges/{charge}"), "s")
    assert sim.handle(SimRequest("GET", f"/v1/charges/{charge}", (("expand[x]", "nope"),)), "s").body == plain.body


def test_an_expand_parameter_of_an_api_without_expandable_fields_is_its_own(tmp_path: Path) -> None:
    # Jira's expand=names,changelog: no field is marked expandable, so nothing is refused or expanded
    path = _spec(tmp_path)
    spec = json.loads(path.read_text())
    del spec["components"]["schemas"]["charge"]["properties"]["customer"]["x-expansionResources"]
    spec["paths"]["/v1/charges/{charge}"]["get"]["parameters"].append(
        {"name": "expand", "in": "query", "schema": {"type": "string"}})
    path.write_text(json.dumps(spec))
    sim = Simulator(load_environment(str(path)))
    plain = sim.handle(SimRequest("GET", "/v1/charges/ch_1"), "s")
    asked = sim.handle(SimRequest("GET", "/v1/charges/ch_1", (("expand", "names,changelog"),)), "s")
    assert plain.status == asked.status == 200
    assert json.loads(asked.body)["id"] == json.loads(plain.body)["id"] == "ch_1"


def test_requested_paths_are_bounded() -> None:
    many = [f"f{i}" for i in range(50)]
    assert len(requested_paths({"expand": many}, None)) == MAX_PATHS
    assert requested_paths({}, {"expand": ["customer", "customer", "data.customer"]}) == [
        ["customer"], ["data", "customer"]]
    assert requested_paths({"expand": "customer"}, None) == [["customer"]]
    assert requested_paths({"expand": [1, None, "a..b"]}, None) == []


STRIPE = Path(__file__).resolve().parents[3] / "shared" / "specs" / "stripe-v30.json"


@pytest.mark.skipif(not STRIPE.is_file(), reason=f"no spec corpus at {STRIPE.parent}")
def test_stripe_expands_a_charges_customer_to_the_customer_the_client_created() -> None:
    sim = Simulator(load_environment(str(STRIPE)))
    auth = (("authorization", "Bearer sk_test_x"),)
    form = (*auth, ("content-type", "application/x-www-form-urlencoded"))
    customer = json.loads(sim.handle(SimRequest("POST", "/v1/customers", (), form,
                                                b"name=Ada+Lovelace&email=ada%40example.com"), "s").body)
    charge = json.loads(sim.handle(SimRequest("POST", "/v1/charges", (), form,
                                              f"amount=500&currency=usd&customer={customer['id']}".encode()), "s").body)
    assert charge["customer"] == customer["id"]
    read = sim.handle(SimRequest("GET", f"/v1/charges/{charge['id']}", (("expand[]", "customer"),), auth), "s")
    expanded = json.loads(read.body)["customer"]
    assert expanded["id"] == customer["id"] and expanded["name"] == "Ada Lovelace"
    assert expanded["email"] == "ada@example.com"
    # a create's form body asks the same way
    made = sim.handle(SimRequest("POST", "/v1/charges", (), form,
                                 f"amount=700&currency=usd&customer={customer['id']}&expand[]=customer".encode()), "s")
    assert json.loads(made.body)["customer"]["name"] == "Ada Lovelace"
    # a path the charge cannot expand: Stripe's 400, in its error shape, and no charge made
    state = sim.state_hash("s")
    refused = sim.handle(SimRequest("POST", "/v1/charges", (), form,
                                    f"amount=700&currency=usd&customer={customer['id']}&expand[]=amount".encode()), "s")
    assert refused.status == 400 and sim.state_hash("s") == state
    assert json.loads(refused.body)["error"]["message"] == "This property cannot be expanded (amount)."


def test_a_query_array_is_read_from_bracketed_names_too() -> None:
    from simulator.service.validation import bracketed_items

    pairs = [("expand[1]", "b"), ("other", "x"), ("expand[0]", "a"), ("expand[]", "c"), ("expand[x]", "no"),
             ("expanded[]", "no"), ("expand[0", "no")]
    assert bracketed_items(pairs, "expand") == ["a", "b", "c"]  # indexed by index, then as they came
    assert bracketed_items([("expand", "plain")], "expand") == []


@pytest.mark.timeout(120)
def test_expand_over_http_as_stripes_clients_encode_it(tmp_path: Path, server_factory: Any) -> None:
    """A real ``toolgrad sim serve`` on 127.0.0.1: ``expand%5B0%5D=customer`` (Stripe's clients
    percent-encode the brackets) expands, and gives the in-process bytes."""
    import httpx

    spec = _store_spec(tmp_path)
    served = server_factory(str(spec))
    charge = httpx.get(f"{served.origin}/v1/charges").json()["data"][0]["id"]
    url = f"{served.origin}/v1/charges/{charge}?expand%5B0%5D=customer"
    response = httpx.get(url)
    assert response.status_code == 200 and isinstance(response.json()["customer"], dict)
    local = Simulator(load_environment(str(spec))).handle(
        SimRequest("GET", f"/v1/charges/{charge}", (("expand[0]", "customer"),)), "default")
    assert response.content == local.body

"""Form bodies with nested members in brackets, as Stripe, Rails and PHP write them and OpenAPI's
``deepObject`` style describes (``metadata[plan]=pro``, ``items[0][price]=p_1``, ``expand[]=x``):
the simulator reads them as the nested values they stand for, and a tool call with nested
arguments is sent that way. Before, the decoder took ``metadata[plan]`` for a field of its own
and the tools sent an object as JSON text: every Stripe write with an object member was a 422."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
import pytest

from simulator.environments.environment import load_environment
from simulator.messages import SimRequest
from simulator.service.simulator import Simulator
from simulator.service.validation import decode_form
from simulator.tools import build_request, tools_for

SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
    "address": {"anyOf": [{"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "integer"}}},
                          {"type": "string", "enum": [""]}]},
    "expand": {"type": "array", "items": {"type": "string"}},
    "items": {"type": "array", "items": {"type": "object", "properties": {
        "price": {"type": "string"}, "quantity": {"type": "integer"}}}},
    "tags": {"type": "array", "items": {"type": "integer"}},
    "a[b]": {"type": "string"},
    "name": {"type": "string"}}}


def test_bracketed_fields_are_nested_members_typed_by_the_schema() -> None:
    pairs = [("metadata[plan]", "pro"), ("metadata[n]", "3"), ("address[city]", "Oslo"), ("address[zip]", "150"),
             ("expand[]", "customer"), ("expand[]", "invoice"), ("items[1][price]", "p_2"),
             ("items[0][price]", "p_1"), ("items[0][quantity]", "2"), ("items[10][price]", "p_10"),
             ("items[9][price]", "p_9"), ("tags", "1"), ("tags", "2"), ("name", "x")]
    assert decode_form(pairs, SCHEMA) == {
        "metadata": {"plan": "pro", "n": "3"},  # additionalProperties: strings stay strings
        "address": {"city": "Oslo", "zip": 150},
        "expand": ["customer", "invoice"],
        "items": [{"price": "p_1", "quantity": 2}, {"price": "p_2"}, {"price": "p_9"}, {"price": "p_10"}],
        "tags": [1, 2],
        "name": "x",
    }


def test_names_that_are_not_nesting_stay_fields_of_their_own() -> None:
    """Bad input: malformed brackets, text after the last bracket, nesting past 8 levels and an
    index of 5,000 digits; and a spec's own property named with brackets."""
    deep = "d" + "[x]" * 9
    huge = "items[" + "9" * 5000 + "][price]"
    pairs = [("a[b]", "literal"), ("weird[", "1"), ("z[a]b", "2"), ("[x]", "3"), (deep, "4"), (huge, "p"),
             ("items[0][price]", "p_0")]
    decoded = decode_form(pairs, SCHEMA)
    assert decoded["a[b]"] == "literal" and decoded["weird["] == "1" and decoded["z[a]b"] == "2"
    assert decoded["[x]"] == "3" and decoded[deep] == "4"
    assert decoded["items"] == [{"price": "p_0"}, {"price": "p"}], "indices order as numbers, however long"


def _stripe_like(tmp_path: Path) -> Simulator:
    customer = {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}, "line1": {"type": "string"}}}}}
    body = {"type": "object", "properties": {
        "name": {"type": "string"}, "metadata": customer["properties"]["metadata"],
        "address": {"anyOf": [customer["properties"]["address"], {"type": "string", "enum": [""]}]}}}
    form = {"application/x-www-form-urlencoded": {
        "schema": body, "encoding": {"metadata": {"style": "deepObject", "explode": True},
                                     "address": {"style": "deepObject", "explode": True}}}}

    def answer(schema: dict[str, Any]) -> dict[str, Any]:
        return {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}}

    item = {"name": "customer", "in": "path", "required": True, "schema": {"type": "string"}}
    spec = {"openapi": "3.0.3", "info": {"title": "payments", "version": "1"}, "paths": {
        "/v1/customers": {"post": {"operationId": "PostCustomers", "requestBody": {"content": form},
                                   "responses": answer(customer)}},
        "/v1/customers/{customer}": {"parameters": [item],
                                     "get": {"operationId": "GetCustomer", "responses": answer(customer)}}}}
    (tmp_path / "openapi.json").write_bytes(orjson.dumps(spec))
    return Simulator(load_environment(tmp_path / "openapi.json"))


def test_a_stripe_style_form_write_stores_its_nested_members(tmp_path: Path) -> None:
    sim = _stripe_like(tmp_path)
    form = urlencode([("name", "Ada"), ("metadata[plan]", "pro"), ("address[city]", "Oslo")]).encode()
    made = sim.handle(SimRequest("POST", "/v1/customers", (), (("content-type", "application/x-www-form-urlencoded"),),
                                 form))
    assert made.status == 200, made.body
    record = made.json()
    assert (record["name"], record["metadata"], record["address"]) == ("Ada", {"plan": "pro"}, {"city": "Oslo"})
    read = sim.handle(SimRequest("GET", f"/v1/customers/{record['id']}"))
    assert read.json() == record


def test_a_tool_call_with_nested_arguments_is_sent_in_brackets(tmp_path: Path) -> None:
    sim = _stripe_like(tmp_path)
    tool = {t.operation_id: t for t in tools_for(sim.env.spec)}["PostCustomers"]
    request = build_request(tool, {"name": "Ada", "metadata": {"plan": "pro", "seats": "3"},
                                   "address": {"city": "Oslo", "line1": "Storgata 1"}})
    assert parse_qsl(request.body.decode()) == [
        ("name", "Ada"), ("metadata[plan]", "pro"), ("metadata[seats]", "3"),
        ("address[city]", "Oslo"), ("address[line1]", "Storgata 1")]
    answer = sim.handle(request)
    assert answer.status == 200, answer.body
    assert answer.json()["metadata"] == {"plan": "pro", "seats": "3"}
    assert answer.json()["address"] == {"city": "Oslo", "line1": "Storgata 1"}


def test_a_text_takes_the_first_union_branch_it_fits() -> None:
    """Stripe's ``tiers[i][up_to]`` is ``"inf"`` or an integer: the string branch's enum lacks
    ``"153"``, so the text is the integer (before, the first branch's type kept it text and the
    body failed validation); a nullable integer sent empty is null."""
    tiers = {"type": "object", "properties": {"tiers": {"type": "array", "items": {"type": "object", "properties": {
        "up_to": {"anyOf": [{"type": "string", "enum": ["inf"]}, {"type": "integer"}]},
        "flat": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}}}}
    pairs = [("tiers[0][up_to]", "153"), ("tiers[0][flat]", ""), ("tiers[1][up_to]", "inf"), ("tiers[1][flat]", "7"),
             ("tiers[2][up_to]", "lots")]
    assert decode_form(pairs, tiers) == {"tiers": [{"up_to": 153, "flat": None}, {"up_to": "inf", "flat": 7},
                                                   {"up_to": "lots"}]}, "bad input 'lots' stays text for validation"


UNIONS: dict[str, Any] = {"type": "object", "properties": {
    # Stripe's "a list, or an empty string that unsets it"
    "discounts": {"anyOf": [{"type": "array", "items": {"type": "object", "properties": {
        "coupon": {"type": "string"}, "optional": {"type": "boolean"}}}}, {"type": "string", "enum": [""]}]},
    "tax_rates": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string", "enum": [""]}]},
    "ids": {"type": "array", "items": {"type": "string"}},
    # a map of objects, or "" (Stripe's currency_options)
    "options": {"anyOf": [{"type": "object", "additionalProperties": {"type": "object", "properties": {
        "enabled": {"type": "boolean"}, "minimum": {"type": "integer"}}}}, {"type": "string", "enum": [""]}]}}}


def test_an_array_or_empty_text_union_reads_each_as_stripe_means_it() -> None:
    """Before, ``discounts=`` was read as ``[""]`` (valid for no branch: a 422 for Stripe's way
    of unsetting a list), and members below a union were read untyped (``"true"``, ``"5"``)."""
    assert decode_form([("discounts", ""), ("tax_rates", ""), ("ids", "")], UNIONS) == {
        "discounts": "", "tax_rates": "", "ids": [""]}  # a plain array has no "" of its own: one empty id
    assert decode_form([("tax_rates", "txr_1"), ("tax_rates", "txr_2")], UNIONS) == {"tax_rates": ["txr_1", "txr_2"]}
    assert decode_form([("tax_rates", ""), ("tax_rates", "txr_2")], UNIONS) == {"tax_rates": ["", "txr_2"]}
    pairs = [("discounts[0][coupon]", "c_1"), ("discounts[0][optional]", "true"),
             ("options[usd][enabled]", "false"), ("options[usd][minimum]", "5")]
    assert decode_form(pairs, UNIONS) == {"discounts": [{"coupon": "c_1", "optional": True}],
                                          "options": {"usd": {"enabled": False, "minimum": 5}}}


STRIPE = Path(__file__).resolve().parents[3] / "shared" / "specs" / "stripe-v30.json"


def _without_empties(value: Any) -> Any:
    """What a form can carry of ``value``: no nulls, no empty objects or lists (they send no field)."""
    if isinstance(value, dict):
        kept = {k: _without_empties(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in kept.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [item for item in map(_without_empties, value) if item != {}]
    return value


@pytest.mark.skipif(not STRIPE.is_file(), reason=f"no spec corpus at {STRIPE.parent}")
def test_every_stripe_form_body_a_tool_sends_is_read_back_as_sent() -> None:
    """Ten generated bodies of every Stripe operation with a form body, sent as a tool sends them
    and read by the simulator's decoder: the same value (2,150 bodies; 125 were not at 68cae7f)."""
    from simulator.datagen.generate import GenerationError, generate_value

    env = load_environment(str(STRIPE))
    tools = {t.operation_id: t for t in tools_for(env.spec)}
    checked, wrong = 0, []
    for op in env.spec.operations:
        schema = op.request_body.content.get("application/x-www-form-urlencoded") if op.request_body else None
        if schema is None:
            continue
        for i in range(10):
            try:
                body = generate_value(schema, f"form|{op.operation_id}|{i}", complete=True)
            except GenerationError:
                continue
            if not isinstance(body, dict) or not body:
                continue
            tool = tools[op.operation_id]
            whole = any(b.location == "body" for b in tool.bindings)  # a field named like a parameter
            sent = build_request(tool, {**_path_args(tool), **({"body": body} if whole else body)})
            checked += 1
            got = decode_form(parse_qsl(sent.body.decode(), keep_blank_values=True), schema)
            if _without_empties(got) != _without_empties(body):
                wrong.append(op.operation_id)
    assert checked > 2000 and not wrong, (checked, len(wrong), sorted(set(wrong))[:10])


def _path_args(tool: Any) -> dict[str, str]:
    return {b.argument: "x" for b in tool.bindings if b.location == "path"}

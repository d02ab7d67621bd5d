"""Shaper.conform on list bodies: hinted records kept when they fit, each checked once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from simulator.service.shaping import Shaper
from simulator.service.validation import compile_schema

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
RECORD = {"type": "object", "required": ["id", "code"],
          "properties": {"id": {"type": "integer"}, "code": {"type": "string", "pattern": "^[A-Z]{3}$"}}}


def _root(page: dict[str, Any]) -> dict[str, Any]:
    return {"$ref": "#/$defs/Page", "$defs": {"Page": page, "Record": RECORD}}


PAGE = {"type": "object", "required": ["data", "total"],
        "properties": {"data": {"type": "array", "items": {"$ref": "#/$defs/Record"}}, "total": {"type": "integer"}}}


def _spied(shaper: Shaper) -> list[Any]:
    checked: list[Any] = []
    real = shaper.is_valid

    def is_valid(root: Any, schema: Any, value: Any) -> bool:
        checked.append(value)
        return real(root, schema, value)

    shaper.is_valid = is_valid  # type: ignore[method-assign]
    return checked


def test_a_list_body_keeps_its_records_and_checks_them_once() -> None:
    root = _root(PAGE)
    records = [{"id": 1, "code": "ABC"}, {"id": 2, "code": "XYZ"}]
    shaper = Shaper(EPOCH)
    checked = _spied(shaper)
    body = shaper.conform(root, root, {"data": records}, "seed")  # the hint lacks the required "total"
    assert body["data"] == records and isinstance(body["total"], int)
    assert compile_schema(root).is_valid(body)
    holding = [v for v in checked if v is records or (isinstance(v, dict) and v.get("data") is records)]
    assert len(holding) == 1, f"the records were checked {len(holding)} times"


def test_a_record_that_breaks_its_pattern_is_not_kept() -> None:
    root = _root(PAGE)
    body = Shaper(EPOCH).conform(root, root, {"data": [{"id": 1, "code": "lower"}], "total": 1}, "seed")
    assert compile_schema(root).is_valid(body)
    assert {"id": 1, "code": "lower"} not in body["data"]


@pytest.mark.parametrize("page, value", [
    (PAGE, {"data": [], "total": "many"}),  # another member is invalid
    (PAGE, {"data": []}),  # a required member is missing
    ({**PAGE, "additionalProperties": False}, {"data": [], "total": 1, "extra": 1}),  # an extra member
    ({**PAGE, "additionalProperties": False}, {"data": [], "total": 1}),
    ({**PAGE, "minProperties": 3}, {"data": [], "total": 1}),  # not a plain object schema: checked whole
    (PAGE, {"data": [], "total": 1}),
])
def test_leaving_out_checked_members_keeps_the_verdict(page: dict[str, Any], value: dict[str, Any]) -> None:
    root = _root(page)
    shaper = Shaper(EPOCH)
    resolved = root["$defs"]["Page"]
    assert shaper._valid_besides(root, root, resolved, value, ["data"]) == compile_schema(root).is_valid(value)


def test_a_polymorphic_items_secrets_are_hidden_by_the_branch_it_is() -> None:
    """Stripe's ``sources.data`` items are a card or a source; a source requires its
    ``client_secret``. Hiding secrets judged every item by the first branch (the card, which
    requires none), dropped it, and answered a list its schema refuses."""
    card = {"type": "object", "required": ["object", "brand"], "properties": {
        "object": {"enum": ["card"]}, "brand": {"type": "string"}, "client_secret": {"type": "string"}}}
    source = {"type": "object", "required": ["object", "client_secret"], "properties": {
        "object": {"enum": ["source"]}, "client_secret": {"type": "string"}}}
    root = {"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {
        "anyOf": [{"$ref": "#/$defs/card"}, {"$ref": "#/$defs/source"}]}}}, "$defs": {"card": card, "source": source}}
    shaper = Shaper(EPOCH)
    hint = {"data": [{"object": "card", "brand": "visa", "client_secret": "c_1"},
                     {"object": "source", "client_secret": "s_1"}]}
    body = shaper.conform(root, root, hint, "seed", hide_secrets=True)
    assert body == {"data": [{"object": "card", "brand": "visa"},  # not required of a card: hidden
                             {"object": "source", "client_secret": "s_1"}]}  # required of a source: kept
    assert compile_schema(root).is_valid(body)

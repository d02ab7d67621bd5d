"""A request may spell a record's field in other case and word separators: twilio writes
``Label`` and ``FriendlyName``, and names the parent ``{AccountSid}``, for records that hold
``label``, ``friendly_name`` and ``account_sid``. The simulator stores, filters and fills in those
fields as the spec's own server would (before, the written fields were dropped and a create
answered only its id)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.spec_api import SpecApi

ACCOUNT = "AC" + "0" * 32
PAGE = f"/Accounts/{ACCOUNT}/Participants.json"


def _spec() -> dict[str, Any]:
    participant = {"type": "object", "properties": {
        "account_sid": {"type": ["string", "null"]},
        "call_sid": {"type": ["string", "null"], "pattern": "^CA[0-9a-f]{32}$"},
        "friendly_name": {"type": ["string", "null"]},
        "label": {"type": ["string", "null"]},
        "muted": {"type": ["boolean", "null"]},
        "date_created": {"type": ["string", "null"]}, "date_updated": {"type": ["string", "null"]}}}
    page = {"type": "object", "properties": {
        "participants": {"type": "array", "items": participant}, "page": {"type": "integer"},
        "uri": {"type": "string"}}}
    written = {"type": "object", "properties": {
        "Label": {"type": "string"}, "FriendlyName": {"type": "string"}, "Muted": {"type": "boolean"},
        "label": {"type": "string"}}}
    account = {"name": "AccountSid", "in": "path", "required": True, "schema": {"type": "string"}}
    call = {"name": "CallSid", "in": "path", "required": True, "schema": {"type": "string"}}
    by_name = {"name": "FriendlyName", "in": "query", "schema": {"type": "string"}}

    def answer(code: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {code: {"description": "ok", "content": {"application/json": {"schema": schema}}}}

    return {
        "openapi": "3.1.0", "info": {"title": "calls", "version": "1"},
        "paths": {
            "/Accounts/{AccountSid}/Participants.json": {
                "parameters": [account],
                "get": {"operationId": "ListParticipant", "parameters": [by_name], "responses": answer("200", page)},
                "post": {"operationId": "CreateParticipant", "responses": answer("201", participant),
                         "requestBody": {"content": {"application/json": {"schema": written}}}},
            },
            "/Accounts/{AccountSid}/Participants/{CallSid}.json": {
                "parameters": [account, call],
                "get": {"operationId": "FetchParticipant", "responses": answer("200", participant)},
            },
        },
    }


@pytest.fixture
def api(tmp_path: Path) -> SpecApi:
    return SpecApi(tmp_path, _spec())


def test_fields_written_in_another_spelling_are_stored_under_the_records_names(api: SpecApi) -> None:
    made = api.ok("POST", PAGE, {"Label": "coach", "FriendlyName": "Ada", "Muted": True})
    assert {k: made.get(k) for k in ("label", "friendly_name", "muted", "account_sid")} == {
        "label": "coach", "friendly_name": "Ada", "muted": True, "account_sid": ACCOUNT}, made
    assert not {"Label", "FriendlyName", "Muted"} & set(made), made
    # twilio's timestamps are set by the simulator's clock, as created_at is
    assert made["date_created"] == made["date_updated"] == "2025-01-01T00:00:00Z", made
    assert api.ok("GET", f"/Accounts/{ACCOUNT}/Participants/{made['call_sid']}.json") == made


def test_the_exact_name_wins_over_another_spelling_of_it(api: SpecApi) -> None:
    made = api.ok("POST", PAGE, {"Label": "spelled", "label": "exact"})
    assert made["label"] == "exact", made


def test_a_list_filters_by_a_field_in_another_spelling(api: SpecApi) -> None:
    made = api.ok("POST", PAGE, {"FriendlyName": "only-me"})
    assert api.ok("GET", f"{PAGE}?FriendlyName=only-me")["participants"] == [made]
    assert api.ok("GET", f"{PAGE}?FriendlyName=nobody")["participants"] == []


def test_fixtures_name_their_parent_and_never_have_a_null_id(api: SpecApi) -> None:
    """Bad data the generator may make for a nullable id field: null, which names no record."""
    fixtures = api.ok("GET", PAGE)["participants"]
    assert fixtures, "the world has fixtures under any account"
    for record in fixtures:
        assert record["account_sid"] == ACCOUNT, record
        assert isinstance(record["call_sid"], str), record
        assert api.ok("GET", f"/Accounts/{ACCOUNT}/Participants/{record['call_sid']}.json") == record



def test_timestamps_are_written_in_the_format_the_schema_names(tmp_path: Path) -> None:
    # twilio's dates are `format: date-time-rfc-2822` ("Fri, 24 May 2019 17:44:46 +0000"): the
    # stamped ones and the generated ones both (before: ISO 8601 text, which a client parsing
    # RFC 2822, as twilio's own libraries do, could not read)
    spec = _spec()
    participant = spec["paths"][
        "/Accounts/{AccountSid}/Participants.json"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    for name in ("date_created", "date_updated"):
        participant["properties"][name]["format"] = "date-time-rfc-2822"
    api = SpecApi(tmp_path, spec)
    made = api.ok("POST", PAGE, {"Label": "coach"})
    assert made["date_created"] == made["date_updated"] == "Wed, 01 Jan 2025 00:00:00 +0000", made
    rfc_2822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                          r"\d{4} \d\d:\d\d:\d\d \+0000$")
    fixtures = [r for r in api.ok("GET", PAGE)["participants"] if r.get("call_sid") != made["call_sid"]]
    dates = [r[name] for r in fixtures for name in ("date_created", "date_updated") if r.get(name) is not None]
    assert dates and all(rfc_2822.match(date) for date in dates), dates

"""A refused request is told what was wrong in the error body its operation documents, not in
generated words (simulator.service.problems)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulator.service.problems import spelled_out
from simulator.service.validation import Problem
from tests.support.spec_api import SpecApi as Api

STR = {"type": "string"}


def api(tmp_path: Path, error: dict[str, Any]) -> Api:
    """One create and one read, whose every error answers ``error`` (components/schemas/Error)."""
    errors = {"4XX": {"description": "refused", "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}}}
    pet = {"type": "object", "required": ["name"], "properties": {"id": STR, "name": STR, "age": {"type": "integer"}}}
    document = {
        "openapi": "3.0.3", "info": {"title": "pets", "version": "1"},
        "paths": {
            "/pets": {"post": {"operationId": "createPet", "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}},
                "responses": {"201": {"description": "made", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Pet"}}}}, **errors}}},
            "/pets/{id}": {"get": {"operationId": "getPet", "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": STR}],
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Pet"}}}}, **errors}}},
        },
        "components": {"schemas": {"Pet": pet, "Error": error}},
    }
    return Api(tmp_path, document)


BAD_PET = {"name": 5, "age": "old"}  # bad input: both members of the wrong type


def test_a_nested_error_object_carries_the_reason_the_code_and_the_field(tmp_path: Path) -> None:
    """Stripe's shape: {"error": {"message", "param", "code" (text), "type" (an enum)}}."""
    sim = api(tmp_path, {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["type"], "properties": {
            "message": STR, "param": STR, "code": STR,
            "type": {"type": "string", "enum": ["api_error", "invalid_request_error"]}}}}})
    response = sim.call("POST", "/pets", BAD_PET)
    assert response.status in (400, 422)
    error = response.json()["error"]
    assert error["message"].startswith("2 problem(s) with the request: body /")
    assert '/name: 5 is not of type "string"' in error["message"]
    assert '/age: "old" is not of type "integer"' in error["message"]
    assert error["param"] in ("name", "age") and error["code"] == str(response.status)
    assert error["type"] in ("api_error", "invalid_request_error")  # the schema's, still


def test_a_flat_error_gets_the_status_as_its_type_says(tmp_path: Path) -> None:
    sim = api(tmp_path, {"type": "object", "required": ["code", "message"],
                         "properties": {"code": {"type": "integer"}, "message": STR}})
    response = sim.call("GET", "/pets/nobody")
    assert response.status == 404
    body = response.json()
    assert (body["code"], body["message"]) == (404, "pet 'nobody' does not exist")  # said once


def test_a_documented_errors_list_gets_one_item_per_problem(tmp_path: Path) -> None:
    sim = api(tmp_path, {"type": "object", "properties": {"errors": {"type": "array", "items": {
        "type": "object", "required": ["field", "message"], "properties": {"field": STR, "message": STR},
        "additionalProperties": False}}}})
    response = sim.call("POST", "/pets", BAD_PET)
    items = response.json()["errors"]
    assert sorted(item["field"] for item in items) == ["age", "name"]
    assert all(item["message"].endswith(("is not of type \"string\"", "is not of type \"integer\""))
               for item in items)


@pytest.mark.parametrize(("count", "ending"), [(1, "body /a: bad 0"), (4, "body /c: bad 2; and 1 more")])
def test_spelled_out_names_at_most_three_problems(count: int, ending: str) -> None:
    problems = [Problem("body", "", f"/{'abcd'[i]}", f"bad {i}") for i in range(count)]
    said = spelled_out(f"{count} problem(s) with the request", problems)
    assert said.startswith(f"{count} problem(s) with the request: body /a: bad 0") and said.endswith(ending)
    assert spelled_out("pet 'x' does not exist", [Problem("path", "id", "", "pet 'x' does not exist")]) == \
        "pet 'x' does not exist"


def test_an_error_text_and_a_list_of_texts_carry_the_reason(tmp_path: Path) -> None:
    """PowerDNS's shape: {"error": text (required), "errors": [text]}, nothing else allowed."""
    sim = api(tmp_path, {"type": "object", "required": ["error"], "additionalProperties": False,
                         "properties": {"error": STR, "errors": {"type": "array", "items": STR}}})
    body = sim.call("POST", "/pets", BAD_PET).json()
    assert body["error"].startswith("2 problem(s) with the request: body /")
    assert sorted(body["errors"]) == ['body /age: "old" is not of type "integer"',
                                      'body /name: 5 is not of type "string"']
    assert sim.call("GET", "/pets/nobody").json() == {"error": "pet 'nobody' does not exist",
                                                       "errors": ["path id: pet 'nobody' does not exist"]}

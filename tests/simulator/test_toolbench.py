"""ToolBench tool files through load_spec: operations, parameters, response templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from simulator.errors import SpecError
from simulator.spec.loader import load_spec
from simulator.spec.toolbench import parse_truncated_json, template_schema


def api(name: str, method: str = "GET", **extra: Any) -> dict[str, Any]:
    return {"category_name": "Data", "tool_name": "Weather Now!", "api_name": name, "api_description": f"{name} api",
            "required_parameters": [], "optional_parameters": [], "method": method, **extra}


def tool_file(tmp_path: Path, apis: list[dict[str, Any]], name: str = "Data__weather.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"tool_name": "Weather Now!", "tool_description": "Forecasts", "api_list": apis}))
    return path


def test_get_api_takes_query_parameters(tmp_path: Path) -> None:
    spec = load_spec(tool_file(tmp_path, [api(
        "Daily Forecast", required_parameters=[
            {"name": "city", "type": "STRING", "description": "City", "default": "Paris"},
            {"name": "days", "type": "NUMBER", "description": "", "default": "3"}],
        optional_parameters=[
            {"name": "metric", "type": "BOOLEAN", "description": "", "default": "true"},
            {"name": "units", "type": "ENUM", "description": "", "default": "si", "enum": ["si", "us"]},
            {"name": "on", "type": "DATE (YYYY-MM-DD)", "description": "", "default": ""},
            {"name": "fields", "type": "ARRAY", "description": "", "default": "[\"t\"]"}],
        template_response={"temp": "float"})]))
    assert (spec.source_format, spec.title, spec.description) == ("toolbench", "Weather Now!", "Forecasts")
    op = spec.operations[0]
    assert (op.operation_id, op.method, op.path) == ("daily_forecast", "GET", "/weather_now/daily_forecast"), (
        "api_name 'Daily Forecast' of tool 'Weather Now!'"
    )
    params = {p.name: p for p in op.parameters}
    assert all(p.location == "query" for p in op.parameters) and op.request_body is None, "GET: query parameters"
    assert params["city"].required and params["city"].schema == {
        "type": "string", "description": "City", "examples": ["Paris"]}, "required STRING with a default"
    assert params["days"].schema["type"] == "number" and params["days"].schema["examples"] == [3], "NUMBER '3'"
    assert params["metric"].schema == {"type": "boolean", "default": True, "examples": [True]}, "BOOLEAN 'true'"
    assert params["units"].schema["enum"] == ["si", "us"], "ENUM with values"
    assert params["on"].schema == {"type": "string", "format": "date"}, "DATE type, empty default dropped"
    assert params["fields"].schema["default"] == ["t"], "ARRAY default given as JSON text"


def test_post_api_takes_a_json_body(tmp_path: Path) -> None:
    spec = load_spec(tool_file(tmp_path, [api(
        "Create alert", "post",
        required_parameters=[{"name": "city", "type": "string", "description": "", "default": ""}],
        optional_parameters=[{"name": "level", "type": "NUMBER", "description": "", "default": "2"}])]))
    op = spec.operations[0]
    assert op.method == "POST" and not op.parameters, "method 'post' upper-cased, no query parameters"
    assert op.request_body is not None and op.request_body.required
    assert op.request_body.content["application/json"] == {
        "type": "object", "required": ["city"],
        "properties": {"city": {"type": "string"}, "level": {"type": "number", "default": 2, "examples": [2]}},
    }, "required + optional parameters as one JSON body"


def test_response_templates(tmp_path: Path) -> None:
    spec = load_spec(tool_file(tmp_path, [
        api("with template", template_response={
            "name": "str", "count": "int", "ok": "bool", "gone": "NoneType",
            "tags": ["list of str with length 8"], "scores": "list of int with length 3", "none": "empty list",
            "items": [{"id": "str", "_list_length": 2}], "meta": {"page": "int"}}),
        api("no template"),
        api("truncated", template_response='{"data": [{"id": "str", "name": "str"}, {"id": "int", "na'),
    ]))
    schema = spec.operation("with_template").responses[0].content["application/json"]
    props = schema["properties"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}, "['list of str with length 8']"
    assert props["scores"] == {"type": "array", "items": {"type": "integer"}}, "'list of int with length 3'"
    assert props["items"] == {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}},
                                                         "required": ["id"]}}, "_list_length ignored"
    assert props["gone"] == {"type": "null"} and props["none"] == {"type": "array"}
    assert schema["required"] == list(props), "every template key is required"
    jsonschema_rs.validator_for(schema)
    echo = spec.operation("no_template").responses[0].content["application/json"]
    assert echo == {"type": "object", "properties": {"result": {"type": "string"}}, "required": ["result"]}, (
        "no template_response: an echo object with a result string"
    )
    cut = spec.operation("truncated").responses[0].content["application/json"]
    assert cut["properties"]["data"]["items"]["properties"] == {"id": {"type": "string"}, "name": {"type": "string"}}, (
        "a template cut off mid-member closes at the last complete member"
    )


def test_duplicate_and_odd_api_names(tmp_path: Path) -> None:
    spec = load_spec(tool_file(tmp_path, [api("Get-Info"), api("get info"), api("/api/v2/{id}"), api("42"),
                                          {"api_name": ""}, api("x", "FETCH")]))
    assert [op.operation_id for op in spec.operations] == ["get_info", "get_info_2", "api_v2_id", "api_42"], (
        "names that slug alike, a path-like name, a numeric name"
    )
    assert [(s.method, s.reason) for s in spec.skipped] == [
        ("*", "the API entry has no 'api_name'"), ("FETCH", "unknown HTTP method 'FETCH'")]


def test_query_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "query__G1__1.json"
    path.write_text(json.dumps({"record": {"query": "weather?", "api_list": [api("x")], "query_id": 1}}))
    with pytest.raises(SpecError, match="ToolBench query file"):
        load_spec(path)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": "str"}', {"a": "str"}),
    ('{"a": "str", "b": {"c": "int", "d": "fl', {"a": "str", "b": {"c": "int"}}),
    ('[{"a": "str"}, {"a": "in', [{"a": "str"}]),
    ('{"a": "x,y', None),
], ids=["complete", "cut-in-nested-object", "cut-in-list", "no-complete-member"])
def test_parse_truncated_json(text: str, expected: Any) -> None:
    assert parse_truncated_json(text) == expected, text


def test_template_scalars() -> None:
    assert template_schema(3) == {"type": "integer"} and template_schema(1.5) == {"type": "number"}
    assert template_schema("some literal") == {"type": "string", "examples": ["some literal"]}

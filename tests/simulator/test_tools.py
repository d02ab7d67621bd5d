"""simulator.tools: tool lists for specs, and tool calls back into requests."""

from __future__ import annotations

import orjson

from simulator.environments.environment import load_environment
from simulator.tools import MAX_NAME, ToolCallError, build_request, tools_for


def test_tool_names_are_unique_and_short_for_every_shipped_env() -> None:
    for env in ("petstore", "museum", "crm", "adafruit", "baskets", "links", "uspto", "tictactoe"):
        names = [t.name for t in tools_for(load_environment(env).spec)]
        assert len(names) == len(set(names)), f"{env}: duplicate tool names"
        assert all(0 < len(n) <= MAX_NAME for n in names), f"{env}: a name is empty or over {MAX_NAME}"


def test_path_query_and_body_arguments_land_where_the_spec_says() -> None:
    tools = {t.operation_id: t for t in tools_for(load_environment("petstore").spec)}
    req = build_request(tools["updatePetWithForm"], {"petId": 7, "name": "Rex", "status": "sold"})
    assert (req.method, req.path) == ("POST", "/pet/7")
    assert ("name", "Rex") in req.query and ("status", "sold") in req.query
    req = build_request(tools["addPet"], {"name": "Rex", "photoUrls": ["u"]})
    assert orjson.loads(req.body) == {"name": "Rex", "photoUrls": ["u"]}
    assert ("content-type", "application/json") in req.headers


def test_a_required_object_body_is_sent_even_with_no_field_given() -> None:
    # bad input would be sending nothing: the operation requires a body, every field optional
    tools = {t.operation_id: t for t in tools_for(load_environment("museum").spec)}
    patch = tools["updateSpecialEvent"]
    assert patch.body_required
    req = build_request(patch, {"eventId": "dad4bce8-f5cb-4078-a211-995864315e39"})
    assert req.body == b"{}"


def test_a_missing_path_argument_is_a_clear_error() -> None:
    tools = {t.operation_id: t for t in tools_for(load_environment("petstore").spec)}
    try:
        build_request(tools["getPetById"], {})  # bad input: no petId
    except ToolCallError as exc:
        assert "petId" in str(exc)
    else:
        raise AssertionError("a call without its path argument must raise ToolCallError")

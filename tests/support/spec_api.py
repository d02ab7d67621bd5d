"""A simulator over an OpenAPI document written inline by a test, called with JSON bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

from simulator.environments.environment import load_environment
from simulator.messages import SimRequest, SimResponse
from simulator.service.simulator import Simulator

JSON = (("content-type", "application/json"),)


class SpecApi:
    """``document`` written to ``tmp_path/openapi.json`` and loaded as an environment."""

    def __init__(self, tmp_path: Path, document: dict[str, Any]) -> None:
        path = tmp_path / "openapi.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        self.sim = Simulator(load_environment(path))

    def call(self, method: str, path: str, data: Any = None) -> SimResponse:
        """``path`` may carry a query string (``/pets?status=sold``)."""
        payload = orjson.dumps(data) if data is not None else b""
        path, _, query = path.partition("?")
        pairs = tuple(parse_qsl(query, keep_blank_values=True))
        return self.sim.handle(SimRequest(method, path, pairs, JSON if data is not None else (), payload))

    def ok(self, method: str, path: str, data: Any = None) -> Any:
        """The JSON body of a 2xx answer (None when it has none); an assertion error otherwise."""
        response = self.call(method, path, data)
        assert 200 <= response.status < 300, (method, path, response.status, response.body)
        return response.json() if response.body else None


# -- writing the documents ----------------------------------------------------------------------

STR = {"type": "string"}
INT = {"type": "integer"}


def spec(paths: dict[str, Any], schemas: dict[str, Any] | None = None, title: str = "spec") -> dict[str, Any]:
    """An OpenAPI 3.0 document of ``paths``, with ``schemas`` as its components."""
    return {"openapi": "3.0.3", "info": {"title": title, "version": "1"}, "paths": paths,
            "components": {"schemas": schemas or {}}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def answer(status: str, schema: dict[str, Any] | None = None, description: str = "ok") -> dict[str, Any]:
    """A response: JSON of ``schema``, or no body."""
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    return {status: out}


def path_param(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or STR}

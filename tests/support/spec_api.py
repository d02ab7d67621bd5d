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

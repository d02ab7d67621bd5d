"""A scalar written where the record holds an object stands for that object: the object with
the scalar in its identifying member (a region's ``slug``, a user's ``login``, a branch's ``ref``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.spec_api import SpecApi


def test_a_branch_name_written_where_the_record_holds_a_branch_object(tmp_path: Path) -> None:
    """GitHub's pull request is created with ``base: "main"`` and answers ``base`` as an object
    whose ``ref`` is that name (before, the write was refused: a text cannot be stored as an object)."""
    branch = {"type": "object", "properties": {"label": {"type": "string"}, "ref": {"type": "string"},
                                               "sha": {"type": "string"}}, "required": ["ref"]}
    pull = {"type": "object", "properties": {"number": {"type": "integer"}, "title": {"type": "string"},
                                             "base": branch, "head": branch}}
    body = {"type": "object", "properties": {"title": {"type": "string"}, "base": {"type": "string"},
                                             "head": {"type": "string"}}}

    def answer(code: str) -> dict[str, Any]:
        return {code: {"description": "ok", "content": {"application/json": {"schema": pull}}}}

    number = {"name": "pull_number", "in": "path", "required": True, "schema": {"type": "integer"}}
    spec = {"openapi": "3.0.3", "info": {"title": "git", "version": "1"}, "paths": {
        "/pulls": {"post": {"operationId": "createPull", "responses": answer("201"),
                            "requestBody": {"content": {"application/json": {"schema": body}}}}},
        "/pulls/{pull_number}": {"parameters": [number], "get": {"operationId": "getPull", "responses": answer("200")}}}}
    api = SpecApi(tmp_path, spec)
    made = api.ok("POST", "/pulls", {"title": "Fix", "base": "main", "head": "fix-1"})
    assert (made["base"]["ref"], made["head"]["ref"]) == ("main", "fix-1"), made
    assert api.ok("GET", f"/pulls/{made['number']}") == made

"""Swagger 2.0 documents (YAML and JSON) through load_spec: body and formData parameters,
consumes/produces, collectionFormat, security definitions, basePath."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from simulator.spec.loader import load_spec
from simulator.spec.model import Spec

SWAGGER_YAML = """\
swagger: "2.0"
info: {title: Files, version: "2"}
host: example.com
basePath: /v1/
consumes: [application/json]
produces: [application/json, application/xml]
securityDefinitions:
  basicAuth: {type: basic}
  key: {type: apiKey, in: query, name: api_key}
  oauth: {type: oauth2, flow: accessCode, authorizationUrl: "https://a/auth", tokenUrl: "https://a/token",
          scopes: {read: read things}}
security: [{basicAuth: []}]
paths:
  /files:
    get:
      operationId: listFiles
      parameters:
        - {name: ids, in: query, type: array, items: {type: integer, format: int32}, collectionFormat: multi}
        - {name: tags, in: query, type: array, items: {type: string}}
        - {name: words, in: query, type: array, items: {type: string}, collectionFormat: ssv}
        - {name: X-Ids, in: header, type: array, items: {type: string}, collectionFormat: pipes}
        - {$ref: "#/parameters/Page"}
      responses:
        200:
          description: ok
          schema: {type: array, items: {$ref: "#/definitions/File"}}
          headers: {X-Rate: {type: integer}}
    post:
      operationId: upload
      consumes: [multipart/form-data]
      parameters:
        - {name: file, in: formData, type: file, required: true}
        - {name: note, in: formData, type: string, x-nullable: true}
      responses:
        201: {description: made, schema: {$ref: "#/definitions/File"}}
        default: {$ref: "#/responses/Error"}
  /files/{id}:
    parameters:
      - {name: id, in: path, type: string, required: true}
    put:
      operationId: replaceFile
      security: []
      parameters:
        - {name: body, in: body, required: true, schema: {$ref: "#/definitions/File"}}
      responses:
        200: {description: ok}
    patch:
      operationId: renameFile
      parameters:
        - {name: name, in: formData, type: string, required: true}
      responses:
        200: {description: ok, schema: {type: file}}
definitions:
  File:
    type: object
    required: [id, name]
    properties:
      id: {type: integer, format: int64, readOnly: true}
      name: {type: string, x-nullable: true, example: a.txt}
parameters:
  Page: {name: page, in: query, type: integer, minimum: 1, default: 1}
responses:
  Error: {description: error, schema: {type: object, properties: {message: {type: string}}}}
"""


@pytest.fixture(params=["yaml", "json"])
def files20(request: pytest.FixtureRequest, tmp_path: Path) -> Spec:
    if request.param == "yaml":
        path = tmp_path / "files.yaml"
        path.write_text(SWAGGER_YAML, encoding="utf-8")
    else:  # the same document as JSON (status codes become string keys)
        path = tmp_path / "files.json"
        path.write_text(json.dumps(yaml.safe_load(SWAGGER_YAML)), encoding="utf-8")
    return load_spec(path)


def test_swagger2_document_level(files20: Spec) -> None:
    assert files20.source_format == "swagger-2.0"
    assert files20.base_path == "/v1", "basePath /v1/"
    assert files20.security_schemes == {
        "basicAuth": {"type": "http", "scheme": "basic"},
        "key": {"type": "apiKey", "in": "query", "name": "api_key"},
        "oauth": {"type": "oauth2", "flows": {"authorizationCode": {
            "authorizationUrl": "https://a/auth", "tokenUrl": "https://a/token", "scopes": {"read": "read things"}}}},
    }, "securityDefinitions basic / apiKey / oauth2 accessCode"
    assert files20.operation("listFiles").security == ({"basicAuth": ()},)
    assert files20.operation("replaceFile").security == ()


def test_swagger2_parameters_and_collection_formats(files20: Spec) -> None:
    params = {p.name: p for p in files20.operation("listFiles").parameters}
    assert (params["ids"].style, params["ids"].explode) == ("form", True), "collectionFormat: multi"
    assert (params["tags"].style, params["tags"].explode) == ("form", False), "default collectionFormat csv"
    assert params["words"].style == "spaceDelimited", "collectionFormat: ssv"
    assert (params["X-Ids"].style, params["X-Ids"].explode) == ("simple", False), "header array"
    assert params["ids"].schema["items"]["maximum"] == 2**31 - 1, "int32 items"
    assert params["page"].schema == {"type": "integer", "minimum": 1, "default": 1}, "$ref'd #/parameters/Page"


def test_swagger2_body_and_produces(files20: Spec) -> None:
    put = files20.operation("replaceFile")
    assert put.request_body is not None and put.request_body.required, "required body parameter"
    assert list(put.request_body.content) == ["application/json"], "global consumes"
    schema = put.request_body.content["application/json"]
    assert schema["$defs"]["File"]["required"] == ["name"], "request: readOnly id leaves required"
    assert [p.name for p in put.parameters] == ["id"], "path-level parameter merged"
    listed = files20.operation("listFiles").responses[0]
    assert list(listed.content) == ["application/json", "application/xml"], "global produces"
    assert listed.headers["X-Rate"] == (False, {"type": "integer"}), "2.0 response header"
    item = listed.content["application/json"]["$defs"]["File"]["properties"]["name"]
    assert item == {"type": ["string", "null"], "examples": ["a.txt"]}, "x-nullable + example"


def test_swagger2_form_data(files20: Spec) -> None:
    upload = files20.operation("upload")
    assert upload.request_body is not None and list(upload.request_body.content) == ["multipart/form-data"]
    schema = upload.request_body.content["multipart/form-data"]
    assert schema == {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "note": {"type": ["string", "null"]}}}, (
        "formData with a file parameter"
    )
    assert upload.request_body.required
    rename = files20.operation("renameFile")
    assert rename.request_body is not None
    assert list(rename.request_body.content) == ["application/x-www-form-urlencoded"], "formData without files"
    assert rename.responses[0].content["application/json"] == {"type": "string", "format": "binary"}, (
        "response schema `type: file`"
    )
    assert upload.responses[1].status == "default" and "message" in str(upload.responses[1].content)

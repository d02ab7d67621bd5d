"""load_spec on small inline specs: OpenAPI 3.0 / 3.1, Swagger 2.0 (JSON and YAML), references
across files, schema translation per direction, partial loading and the errors a user sees."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml

from simulator.errors import SpecError
from simulator.spec.loader import load_spec
from simulator.spec.model import Operation, Spec

REPO = Path(__file__).resolve().parents[2]


def write(directory: Path, name: str, content: Any) -> Path:
    """Write ``content`` (a dict, dumped as JSON or YAML by the file's suffix, or text) to ``name``."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(textwrap.dedent(content), encoding="utf-8")
    elif name.endswith(".json"):
        path.write_text(json.dumps(content), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def valid(schema: dict[str, Any], instance: Any) -> bool:
    return bool(jsonschema_rs.validator_for(schema).is_valid(instance))


def body_schema(op: Operation, media: str = "application/json") -> dict[str, Any]:
    assert op.request_body is not None, f"{op.operation_id} should have a request body"
    return op.request_body.content[media]


def response_schema(op: Operation, status: str = "200", media: str = "application/json") -> dict[str, Any]:
    response = next(r for r in op.responses if r.status == status)
    return response.content[media]


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs_in(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs_in(v)]
    return []


def assert_self_contained(schema: dict[str, Any], what: str) -> None:
    jsonschema_rs.validator_for(schema)
    defs = schema.get("$defs", {})
    for ref in refs_in(schema):
        assert ref.startswith("#/$defs/") and ref[len("#/$defs/"):] in defs, f"{what}: dangling {ref}"


def info(title: str = "T") -> dict[str, Any]:
    return {"title": title, "version": "1.2.3"}


# -- OpenAPI 3.0 -----------------------------------------------------------------------------------

PETS_30: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": info("Pets"),
    "servers": [{"url": "https://{host}/api/{version}/", "variables": {
        "host": {"default": "example.com"}, "version": {"default": "v2"}}}],
    "security": [{"key": []}],
    "paths": {
        "/pets": {
            "parameters": [{"name": "trace", "in": "header", "schema": {"type": "string"}},
                           {"name": "limit", "in": "query", "schema": {"type": "string"}}],
            "get": {
                "operationId": "listPets",
                "x-internal": True,
                "parameters": [
                    {"name": "limit", "in": "query", "required": True,
                     "schema": {"type": "integer", "format": "int32", "minimum": 1}},
                    {"name": "tags", "in": "query", "schema": {"type": "array", "items": {"type": "string"}},
                     "style": "pipeDelimited"},
                    {"name": "Accept", "in": "header", "schema": {"type": "string"}},
                    {"$ref": "#/components/parameters/Sort"},
                ],
                "responses": {
                    "200": {"description": "ok",
                            "headers": {"X-Total": {"$ref": "#/components/headers/Total"}},
                            "content": {"application/json": {"schema": {
                                "type": "array", "items": {"$ref": "#/components/schemas/Pet"}}}}},
                    "4XX": {"$ref": "#/components/responses/Problem"},
                    "default": {"description": "other", "content": {"text/plain": {}}},
                },
            },
            "post": {
                "security": [],
                "requestBody": {"$ref": "#/components/requestBodies/NewPet"},
                "responses": {"201": {"description": "made", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}},
            },
        },
        "/pets/{petId}": {
            "get": {
                "operationId": "listPets",
                "security": [{}, {"key": []}],
                "parameters": [{"name": "petId", "in": "path", "schema": {"type": "string"}},
                               {"name": "ghost", "in": "path", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ok"}},
            },
        },
        "/owners/{ownerId}/pets": {"get": {"responses": {"204": {"description": "none"}}}},
    },
    "components": {
        "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Key", "x-vendor": 1}},
        "parameters": {"Sort": {"name": "sort", "in": "query", "schema": {
            "type": "string", "enum": ["asc", "desc"], "nullable": True}}},
        "headers": {"Total": {"required": True, "schema": {"type": "integer", "format": "int64"}}},
        "requestBodies": {"NewPet": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}},
        "responses": {"Problem": {"description": "bad", "content": {
            "application/problem+json": {"schema": {"type": "object", "properties": {
                "title": {"type": "string"}}}}}}},
        "schemas": {
            "Pet": {
                "type": "object",
                "required": ["id", "name", "secret"],
                "x-tablename": "pets",
                "discriminator": {"propertyName": "kind"},
                "properties": {
                    "id": {"type": "integer", "readOnly": True},
                    "name": {"type": "string", "example": "Rex", "x-faker": "name"},
                    "secret": {"type": "string", "writeOnly": True},
                    "nickname": {"type": "string", "nullable": True},
                    "age": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 40,
                            "exclusiveMaximum": False},
                    "owner": {"allOf": [{"$ref": "#/components/schemas/Owner"}], "nullable": True},
                    "born": {"type": "string", "format": "date-of-birth"},
                },
            },
            "Owner": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    },
}


@pytest.fixture
def pets30(tmp_path: Path) -> Spec:
    return load_spec(write(tmp_path, "pets.yaml", PETS_30))


def test_openapi30_document_level_fields(pets30: Spec, tmp_path: Path) -> None:
    assert pets30.source_format == "openapi-3.0", "an `openapi: 3.0.3` document"
    assert (pets30.title, pets30.version) == ("Pets", "1.2.3"), "info.title / info.version"
    assert pets30.base_path == "/api/v2", "server URL with {host}/{version} variables and a trailing slash"
    assert pets30.security_schemes == {"key": {"type": "apiKey", "in": "header", "name": "X-Key"}}, (
        "security scheme with an x-vendor extension"
    )
    raw = (tmp_path / "pets.yaml").read_bytes()
    assert pets30.sha256 == hashlib.sha256(raw).hexdigest(), "a spec without external refs: sha256 of its bytes"
    assert not pets30.skipped, "nothing in PETS_30 is broken"


def test_operation_ids_are_unique_and_derived_when_missing(pets30: Spec) -> None:
    ids = [(op.method, op.path, op.operation_id) for op in pets30.operations]
    assert ids == [
        ("GET", "/pets", "listPets"),
        ("POST", "/pets", "post_pets"),
        ("GET", "/pets/{petId}", "listPets_2"),
        ("GET", "/owners/{ownerId}/pets", "get_owners_ownerId_pets"),
    ], "two operations both named listPets, two without an operationId"
    assert pets30.operation("listPets").pointer == "/paths/~1pets/get"


def test_parameters_merge_style_and_ignored_headers(pets30: Spec) -> None:
    op = pets30.operation("listPets")
    params = {(p.location, p.name): p for p in op.parameters}
    assert set(params) == {("header", "trace"), ("query", "limit"), ("query", "tags"), ("query", "sort")}, (
        "path-level trace+limit merged with operation-level limit; the `Accept` header parameter is ignored"
    )
    limit = params[("query", "limit")]
    assert limit.required and limit.schema["type"] == "integer", "operation-level `limit` overrides path-level"
    assert (limit.schema["minimum"], limit.schema["maximum"]) == (1, 2**31 - 1), "int32 adds only missing bounds"
    assert (limit.style, limit.explode) == ("form", True), "query default style"
    assert (params[("header", "trace")].style, params[("header", "trace")].explode) == ("simple", False)
    assert (params[("query", "tags")].style, params[("query", "tags")].explode) == ("pipeDelimited", False), (
        "explicit style pipeDelimited without explode"
    )
    sort = params[("query", "sort")].schema
    assert sort["type"] == ["string", "null"] and sort["enum"] == ["asc", "desc", None], (
        "$ref'd parameter with a nullable enum"
    )


def test_path_parameters_fit_the_template(pets30: Spec) -> None:
    by_id = pets30.operation("listPets_2")
    assert [(p.name, p.required) for p in by_id.parameters] == [("petId", True)], (
        "`ghost` is declared in: path but absent from /pets/{petId}; petId has no `required: true`"
    )
    owners = pets30.operation("get_owners_ownerId_pets")
    assert [(p.name, p.location, p.schema) for p in owners.parameters] == [("ownerId", "path", {"type": "string"})], (
        "/owners/{ownerId}/pets declares no parameters"
    )


def test_security_inheritance_override_and_optional(pets30: Spec) -> None:
    assert pets30.operation("listPets").security == ({"key": ()},), "top-level security inherited"
    assert pets30.operation("post_pets").security == (), "`security: []` means no auth"
    assert pets30.operation("listPets_2").security == ({}, {"key": ()}), "`{}` in the list keeps auth optional"


def test_responses_statuses_headers_and_empty_media(pets30: Spec) -> None:
    op = pets30.operation("listPets")
    assert [r.status for r in op.responses] == ["200", "4XX", "default"], "4XX and default keys kept as written"
    ok = op.responses[0]
    assert ok.headers["X-Total"][0] is True, "$ref'd header with required: true"
    assert ok.headers["X-Total"][1]["maximum"] == 2**63 - 1, "int64 header schema"
    assert op.responses[1].content["application/problem+json"]["type"] == "object", "$ref'd response"
    assert op.responses[2].content == {"text/plain": {}}, "media type without a schema -> {}"


def test_schema_translation_30(pets30: Spec) -> None:
    schema = response_schema(pets30.operation("post_pets"), "201")
    assert schema["$ref"] == "#/$defs/Pet" and set(schema["$defs"]) == {"Pet", "Owner"}, (
        "only the defs Pet reaches transitively"
    )
    pet = schema["$defs"]["Pet"]
    assert "discriminator" not in pet and "x-tablename" not in pet, "discriminator / x-* dropped"
    assert pet["properties"]["name"] == {"type": "string", "examples": ["Rex"]}, "example -> examples, x-faker gone"
    assert pet["properties"]["nickname"]["type"] == ["string", "null"], "nullable string"
    assert pet["properties"]["age"] == {"type": "number", "exclusiveMinimum": 0, "maximum": 40}, (
        "boolean exclusiveMinimum true / exclusiveMaximum false"
    )
    owner = pet["properties"]["owner"]
    assert owner == {"anyOf": [{"allOf": [{"$ref": "#/$defs/Owner"}]}, {"type": "null"}]}, (
        "nullable allOf: null admitted next to the composition"
    )
    assert pet["properties"]["born"]["format"] == "date-of-birth", "unknown formats stay as annotations"
    assert_self_contained(schema, "201 response of post_pets")
    assert valid(schema, {"id": 1, "name": "a", "owner": None, "nickname": None}), "nullable values accepted"
    assert not valid(schema, {"id": 1, "name": "a", "age": 0}), "age 0 violates the exclusive minimum"


def test_read_only_and_write_only_per_direction(pets30: Spec) -> None:
    request = body_schema(pets30.operation("post_pets"))["$defs"]["Pet"]
    response = response_schema(pets30.operation("post_pets"), "201")["$defs"]["Pet"]
    assert request["required"] == ["name", "secret"], "request: readOnly `id` leaves required"
    assert response["required"] == ["id", "name"], "response: writeOnly `secret` leaves required"
    assert "id" in request["properties"] and "secret" in response["properties"], "both stay allowed"


# -- OpenAPI 3.1 -------------------------------------------------------------------------------------

TREE_31: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": info("Tree"),
    "paths": {
        "/nodes": {
            "post": {
                "operationId": "createNode",
                "requestBody": {"content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Node", "required": ["id"]}}}},
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Node"}}}}},
            },
        },
        "/shapes": {
            "put": {
                "operationId": "putShape",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "oneOf": [{"$ref": "#/components/schemas/Circle"}, {"$ref": "#/components/schemas/Square"}],
                    "discriminator": {"propertyName": "kind", "mapping": {
                        "circle": "#/components/schemas/Circle", "square": "#/components/schemas/Square"}},
                }}}},
                "responses": {"204": {"description": "stored"}},
            },
        },
    },
    "components": {"schemas": {
        "Node": {
            "type": "object",
            "required": ["label"],
            "properties": {
                "id": {"type": "string", "readOnly": True},
                "label": {"type": ["string", "null"]},
                "kind": {"const": "node"},
                "leaf": {"$ref": "#/components/schemas/Node/$defs/Leaf"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
            },
            "$defs": {"Leaf": {"type": "integer", "exclusiveMinimum": 0}},
        },
        "Shape": {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}}},
        "Circle": {"allOf": [{"$ref": "#/components/schemas/Shape"}, {
            "type": "object", "required": ["radius"], "properties": {"kind": {"const": "circle"},
                                                                     "radius": {"type": "number"}}}]},
        "Square": {"allOf": [{"$ref": "#/components/schemas/Shape"}, {
            "type": "object", "required": ["side"], "properties": {"kind": {"const": "square"},
                                                                   "side": {"type": "number"}}}]},
    }},
}


@pytest.fixture
def tree31(tmp_path: Path) -> Spec:
    return load_spec(write(tmp_path, "tree.json", TREE_31))


def test_openapi31_keeps_2020_12_and_rewrites_refs(tree31: Spec) -> None:
    assert tree31.source_format == "openapi-3.1", "an `openapi: 3.1.0` JSON document"
    schema = response_schema(tree31.operation("createNode"))
    node = schema["$defs"]["Node"]
    assert node["properties"]["label"] == {"type": ["string", "null"]}, "3.1 type arrays kept"
    assert node["properties"]["kind"] == {"const": "node"}, "const kept"
    assert "$defs" not in node, "inner $defs are lifted into the root's $defs"
    assert node["properties"]["leaf"] == {"$ref": "#/$defs/Leaf"}, "ref into a schema's own $defs"
    assert schema["$defs"]["Leaf"] == {"type": "integer", "exclusiveMinimum": 0}, "numeric exclusiveMinimum kept"
    assert_self_contained(schema, "Node response")


def test_recursive_schema_stays_recursive(tree31: Spec) -> None:
    schema = response_schema(tree31.operation("createNode"))
    assert schema["$defs"]["Node"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}, (
        "Node.children refers back to Node"
    )
    deep = {"label": "a", "children": [{"label": "b", "children": [{"label": None, "leaf": 3}]}]}
    assert valid(schema, deep), "a three-level tree"
    assert not valid(schema, {"label": "a", "children": [{"label": "b", "children": [{"leaf": 3}]}]}), (
        "a grandchild without its required label"
    )


def test_ref_siblings_and_read_only_in_31(tree31: Spec) -> None:
    schema = body_schema(tree31.operation("createNode"))
    assert schema["$ref"] == "#/$defs/Node" and "required" not in schema, (
        "request: `required: [id]` next to the $ref names a readOnly property, so it goes"
    )
    response = response_schema(tree31.operation("createNode"))
    assert response["$defs"]["Node"]["required"] == ["label"]


def test_oneof_with_discriminator(tree31: Spec) -> None:
    schema = body_schema(tree31.operation("putShape"))
    assert "discriminator" not in schema and len(schema["oneOf"]) == 2, "discriminator dropped, oneOf carries it"
    assert set(schema["$defs"]) == {"Circle", "Square", "Shape"}, "allOf parents reached through oneOf"
    assert_self_contained(schema, "putShape body")
    assert valid(schema, {"kind": "circle", "radius": 2}), "a circle"
    assert not valid(schema, {"kind": "circle", "side": 2}), "a circle with a square's field only"


def test_id_and_anchor_refs_and_inherited_read_only(tmp_path: Path) -> None:
    doc = {"openapi": "3.1.0", "info": info(), "paths": {"/items": {"post": {
        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}},
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Item"}}}}}}}},
        "components": {"schemas": {
            "Base": {"$id": "/schemas/base", "type": "object", "properties": {
                "id": {"type": "string", "readOnly": True},
                "name": {"type": "string", "$anchor": "base-name"}}},
            "Item": {"allOf": [{"$ref": "/schemas/base"}, {"required": ["id", "code"], "properties": {
                "code": {"$ref": "/schemas/base#base-name"}}}]},
        }}}
    spec = load_spec(write(tmp_path, "ids.yaml", doc))
    request = body_schema(spec.operations[0])
    assert sorted(request["$defs"]) == ["Base", "Item", "components_schemas_Base_properties_name"], (
        "a $ref by $id (/schemas/base) and one by $anchor (/schemas/base#base-name)"
    )
    assert "$id" not in request["$defs"]["Base"] and "$anchor" not in str(request), "$id/$anchor dropped"
    assert request["$defs"]["Item"]["allOf"][1]["required"] == ["code"], (
        "request: `id` is readOnly in the allOf sibling Base, so it leaves the inline member's required"
    )
    response = response_schema(spec.operations[0])
    assert response["$defs"]["Item"]["allOf"][1]["required"] == ["id", "code"]
    assert_self_contained(request, "Item request body")


# -- references across files -------------------------------------------------------------------------


def cross_file_spec(tmp_path: Path) -> Path:
    write(tmp_path, "schemas/pet.yaml", {
        "type": "object",
        "properties": {"tag": {"$ref": "./tag.json"}, "owner": {"$ref": "../common.yaml#/Pet"}},
    })
    write(tmp_path, "schemas/tag.json", {"type": "string", "minLength": 1})
    write(tmp_path, "common.yaml", {
        "Error": {"type": "object", "properties": {"code": {"type": "integer"}}},
        "Pet": {"type": "object", "properties": {"name": {"type": "string"}}},
    })
    write(tmp_path, "paths/pets.yaml", {"get": {"operationId": "viaPathRef", "responses": {"200": {
        "description": "ok", "content": {"application/json": {"schema": {"$ref": "../schemas/pet.yaml"}}}}}}})
    return write(tmp_path, "main.yaml", {
        "openapi": "3.0.0",
        "info": info(),
        "paths": {
            "/pets": {"get": {"operationId": "getPet", "responses": {
                "200": {"description": "ok", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Pet"}}}},
                "default": {"description": "err", "content": {"application/json": {"schema": {
                    "$ref": "common.yaml#/Error"}}}},
            }}},
            "/other": {"$ref": "paths/pets.yaml"},
        },
        "components": {"schemas": {"Pet": {"$ref": "./schemas/pet.yaml"}}},
    })


def test_cross_file_refs_are_bundled(tmp_path: Path) -> None:
    spec = load_spec(cross_file_spec(tmp_path))
    schema = response_schema(spec.operation("getPet"))
    assert_self_contained(schema, "getPet 200 (refs into schemas/pet.yaml, tag.json, common.yaml)")
    assert sorted(schema["$defs"]) == ["common_Pet", "components_schemas_Pet", "pet", "tag"], (
        "two targets called Pet (main and common.yaml) get qualified names; whole files go by their stem"
    )
    assert valid(schema, {"tag": "x", "owner": {"name": "n"}}) and not valid(schema, {"tag": ""}), (
        "tag.json's minLength reached through pet.yaml's relative ref"
    )
    error = response_schema(spec.operation("getPet"), "default")
    assert error == {"$ref": "#/$defs/Error", "$defs": {"Error": {
        "type": "object", "properties": {"code": {"type": "integer"}}}}}, "common.yaml#/Error"
    assert spec.operation("viaPathRef").path == "/other", "a path item $ref'd from another file"
    assert_self_contained(response_schema(spec.operation("viaPathRef")), "path item in paths/pets.yaml")


def test_sha256_covers_referenced_files(tmp_path: Path) -> None:
    main = cross_file_spec(tmp_path)
    before = load_spec(main).sha256
    assert before != hashlib.sha256(main.read_bytes()).hexdigest(), "external files count in the digest"
    (tmp_path / "schemas/tag.json").write_text('{"type": "string", "minLength": 2}')
    assert load_spec(main).sha256 != before, "editing schemas/tag.json changes the digest"


def test_output_is_identical_across_hash_seeds(tmp_path: Path) -> None:
    main = cross_file_spec(tmp_path)
    code = (
        "import dataclasses, hashlib, sys, orjson; from simulator.spec.loader import load_spec; "
        "s = load_spec(sys.argv[1]); d = dataclasses.asdict(s); d['source'] = ''; "
        "print(hashlib.sha256(orjson.dumps(d)).hexdigest())"
    )
    digests = {
        subprocess.run([sys.executable, "-c", code, str(main)], capture_output=True, text=True, check=True,
                       cwd=REPO, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("0", "1", "4242")
    }
    assert len(digests) == 1, "the cross-file spec loaded under three PYTHONHASHSEED values"


def test_remote_ref_is_refused_with_its_pointer(tmp_path: Path) -> None:
    doc = {"openapi": "3.0.0", "info": info(), "paths": {"/pets": {"get": {"responses": {"200": {
        "description": "ok", "content": {"application/json": {"schema": {
            "$ref": "https://example.com/schemas.yaml#/Pet"}}}}}}}}}
    path = write(tmp_path, "remote.json", doc)
    with pytest.raises(SpecError) as info_:
        load_spec(path)
    err = info_.value
    assert err.pointer == "/paths/~1pets/get/responses/200/content/application~1json/schema", (
        "remote $ref under GET /pets 200"
    )
    assert "https://example.com/schemas.yaml" in err.message and "allow_remote_refs" in (err.fix or "")
    assert err.file == str(path)


def test_remote_ref_is_fetched_when_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"openapi": "3.0.0", "info": info(), "paths": {"/pets": {"get": {"responses": {"200": {
        "description": "ok", "content": {"application/json": {"schema": {
            "$ref": "https://example.com/schemas.yaml#/Pet"}}}}}}}}}
    fetched: list[tuple[str, float]] = []

    def fake_get(url: str, *, timeout: float, follow_redirects: bool) -> httpx.Response:
        fetched.append((url, timeout))
        return httpx.Response(200, content=b"Pet: {type: object, properties: {name: {$ref: '#/Name'}}}\n"
                                           b"Name: {type: string}\n", request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    spec = load_spec(write(tmp_path, "remote.json", doc), allow_remote_refs=True)
    assert fetched == [("https://example.com/schemas.yaml", 10.0)], "fetched once, 10 s timeout"
    schema = response_schema(spec.operations[0])
    assert_self_contained(schema, "remote Pet with a ref inside the remote document")
    assert sorted(schema["$defs"]) == ["Name", "Pet"]


# -- partial loading and errors -----------------------------------------------------------------------


def test_broken_operations_are_skipped_and_the_rest_load(tmp_path: Path) -> None:
    doc = {
        "openapi": "3.0.0", "info": info(),
        "paths": {
            "/good": {"get": {"operationId": "good", "responses": {"200": {"description": "ok"}}}},
            "/bad-ref": {"get": {"operationId": "badRef", "responses": {"200": {"description": "ok", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Broken"}}}}}}},
            "/bad-param": {"get": {"parameters": [{"name": "q", "in": "query"}],
                                   "responses": {"200": {"description": "ok"}}}},
            "/missing-file": {"post": {"requestBody": {"$ref": "nowhere.yaml#/Body"},
                                       "responses": {"200": {"description": "ok"}}}},
        },
        "components": {"schemas": {"Broken": {"properties": {"x": {"$ref": "#/components/schemas/Nope"}}}}},
    }
    spec = load_spec(write(tmp_path, "partial.json", doc))
    assert [op.operation_id for op in spec.operations] == ["good"], "three broken operations, one good"
    skipped = {s.path: s for s in spec.skipped}
    assert skipped["/bad-ref"].pointer == "/components/schemas/Broken/properties/x", "where the dangling $ref is"
    assert "#/components/schemas/Nope" in skipped["/bad-ref"].reason
    assert skipped["/bad-param"].pointer == "/paths/~1bad-param/get/parameters/0"
    assert "neither 'schema' nor 'content'" in skipped["/bad-param"].reason, "parameter without schema"
    assert skipped["/missing-file"].method == "POST" and "nowhere.yaml" in skipped["/missing-file"].reason


def test_nothing_servable_is_an_error(tmp_path: Path) -> None:
    doc = {"openapi": "3.0.0", "info": info(), "paths": {"/x": {"get": {"responses": {"200": {
        "$ref": "#/components/responses/Gone"}}}}}}
    with pytest.raises(SpecError) as err:
        load_spec(write(tmp_path, "dead.yaml", doc))
    assert err.value.pointer == "/paths/~1x/get/responses/200", "the only operation's response $ref dangles"
    assert "#/components/responses/Gone" in err.value.message


@pytest.mark.parametrize(("name", "content", "expected", "pointer"), [
    ("broken.yaml", "openapi: 3.0.0\npaths: {/a: [\n", "not valid YAML", ""),
    ("broken.json", '{"openapi": "3.0.0", "paths": {', "not valid JSON", ""),
    ("list.yaml", "- 1\n- 2\n", "not a mapping", ""),
    ("empty.yaml", "", "the file is empty", ""),
    ("readme.yaml", "title: not an api\n", "no 'openapi' or 'swagger' key", ""),
    ("old.yaml", "swagger: '1.2'\npaths: {}\n", "unsupported Swagger version", "/swagger"),
    ("nopaths.yaml", "openapi: 3.1.0\ninfo: {title: t, version: '1'}\nwebhooks: {}\n", "no 'paths'", "/paths"),
    ("nothing.yaml", "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\n", "no operations", "/paths"),
    ("query.json", '{"record": {"query": "q", "api_list": []}}', "ToolBench query file", ""),
], ids=["yaml-syntax", "json-syntax", "top-level-list", "empty-file", "not-an-api", "swagger-1.2",
        "no-paths", "no-operations", "toolbench-query"])
def test_unusable_documents_raise_spec_error(tmp_path: Path, name: str, content: str, expected: str,
                                             pointer: str) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert expected in err.value.message, f"{name}: {err.value}"
    assert err.value.pointer == pointer and err.value.file == str(path), name
    assert err.value.fix, f"{name}: a SpecError tells how to fix it"


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "absent.yaml")


# -- YAML and schema corner cases -------------------------------------------------------------------


def test_yaml_12_scalars(tmp_path: Path) -> None:
    text = """\
    openapi: 3.0.0
    info: {title: t, version: 1.0}
    paths:
      /flags:
        get:
          parameters:
            - {name: mode, in: query, schema: {type: string, enum: [yes, no, on, off], default: 2024-01-01}}
          responses:
            200:
              description: ok
              content: {application/json: {schema: {type: object, properties: {on: {type: string}}}}}
    """
    spec = load_spec(write(tmp_path, "flags.yaml", text))
    schema = spec.operations[0].parameters[0].schema
    assert schema["enum"] == ["yes", "no", "on", "off"], "YAML 1.1 booleans stay strings"
    assert schema["default"] == "2024-01-01", "an unquoted date stays the string written"
    assert spec.operations[0].responses[0].status == "200", "an unquoted status code becomes a string key"
    assert "on" in response_schema(spec.operations[0])["properties"], "a property named `on`"
    assert spec.version == "1.0", "an unquoted numeric version"


def test_invalid_keyword_values_are_dropped_so_schemas_compile(tmp_path: Path) -> None:
    doc = {"openapi": "3.0.0", "info": info(), "paths": {"/x": {"post": {
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object",
            "required": True,
            "properties": {
                "code": {"type": "string", "pattern": "(?<unclosed", "maxLength": "12"},
                "count": {"type": "int", "minimum": "3", "multipleOf": 0},
                "tuple": {"type": "array", "items": [{"type": "string"}], "additionalItems": False},
            },
        }}}},
        "responses": {"200": {"description": "ok"}}}}}}
    spec = load_spec(write(tmp_path, "sloppy.json", doc))
    schema = body_schema(spec.operations[0])
    assert "required" not in schema, "`required: true` at object level is not a list"
    props = schema["properties"]
    assert props["code"] == {"type": "string", "maxLength": 12}, "an uncompilable pattern and a string number"
    assert props["count"] == {"type": "integer", "minimum": 3}, "type alias `int`, multipleOf 0"
    assert props["tuple"] == {"type": "array", "prefixItems": [{"type": "string"}], "items": False}, (
        "draft-4 tuple items"
    )
    jsonschema_rs.validator_for(schema)


def test_parameter_with_content_and_path_item_ref_cycle(tmp_path: Path) -> None:
    doc = {"openapi": "3.0.0", "info": info(), "paths": {
        "/search": {"get": {"parameters": [{"name": "filter", "in": "query", "content": {
            "application/json": {"schema": {"type": "object", "properties": {"q": {"type": "string"}}}}}}],
            "responses": {"200": {"description": "ok"}}}},
        "/loop": {"$ref": "#/paths/~1loop"},
    }}
    spec = load_spec(write(tmp_path, "content.json", doc))
    assert spec.operations[0].parameters[0].schema["type"] == "object", "a parameter described by `content`"
    assert spec.skipped[0].path == "/loop" and "cycle" in spec.skipped[0].reason, "a path item referring to itself"

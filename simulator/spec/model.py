"""The typed, immutable model of a loaded API: what every other simulator module reads.

Schemas inside the model are *self-contained JSON Schema 2020-12* documents: OpenAPI
keywords (``nullable``, boolean ``exclusiveMinimum``, ``discriminator`` ...) have been
translated, and every ``$ref`` points into the schema's own ``$defs``. A validator or a
data generator can therefore take one schema dict and need nothing else.

Request-direction schemas drop ``readOnly`` properties from ``required``; response-direction
schemas drop ``writeOnly`` ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

JSONSchema = dict[str, Any]
ParamLocation = Literal["path", "query", "header", "cookie"]


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: ParamLocation
    required: bool
    schema: JSONSchema
    style: str = "form"
    explode: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True)
class RequestBody:
    required: bool
    # media type (e.g. "application/json", "application/x-www-form-urlencoded") -> schema
    content: dict[str, JSONSchema]
    description: str = ""


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    # "200", "201", "4XX" or "default", as written in the spec
    status: str
    # media type -> schema (an empty schema {} when the spec gives a media type without one)
    content: dict[str, JSONSchema]
    # header name -> (required, schema)
    headers: dict[str, tuple[bool, JSONSchema]] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True, slots=True)
class Operation:
    operation_id: str  # unique within the spec (derived when the spec gives none)
    method: str  # upper case: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS
    path: str  # the template as written in the spec, e.g. "/pet/{petId}"
    pointer: str  # JSON pointer of the operation object, e.g. "/paths/~1pet~1{petId}/get"
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    request_body: RequestBody | None = None
    responses: tuple[ResponseSpec, ...] = ()
    # alternatives, as in the spec: any one requirement satisfied is enough; () = no auth needed
    security: tuple[dict[str, tuple[str, ...]], ...] = ()
    deprecated: bool = False


@dataclass(frozen=True, slots=True)
class SkippedOperation:
    method: str
    path: str
    pointer: str
    reason: str


@dataclass(frozen=True, slots=True)
class Spec:
    """A loaded, normalised API description."""

    title: str
    source: Path  # the file it came from
    sha256: str  # sha256 of the source file's bytes (plus referenced files, in order)
    source_format: str  # "openapi-3.1", "openapi-3.0", "swagger-2.0" or "toolbench"
    version: str  # the `info.version` of the API
    base_path: str  # path prefix of the first server ("" when none), e.g. "/api/v2"
    operations: tuple[Operation, ...]
    skipped: tuple[SkippedOperation, ...] = ()
    # scheme name -> OpenAPI 3.x security scheme object
    security_schemes: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""

    def operation(self, operation_id: str) -> Operation:
        for op in self.operations:
            if op.operation_id == operation_id:
                return op
        raise KeyError(operation_id)

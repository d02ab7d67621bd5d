"""ToolBench / StableToolBench tool files -> :class:`~simulator.spec.model.Spec` (pure).

A tool file has ``tool_name`` and ``api_list``; each API becomes one operation at
``/<tool_slug>/<api_slug>``. ToolBench does not record where a parameter goes, so required and
optional parameters become query parameters for GET/DELETE (and HEAD/OPTIONS) and a JSON body for
POST/PUT/PATCH. The 200 response schema comes from ``template_response`` (``"str"`` -> string,
``"list of int with length 3"`` -> array of integers, ``_list_length`` ignored, every key
required); templates ToolBench cut off at 1,000 characters are closed at the last complete member.
Without a template the response is an object echoing the parameters plus a ``result`` string.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .model import JSONSchema, Operation, Parameter, RequestBody, ResponseSpec, SkippedOperation, Spec

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_SCALARS: dict[str, JSONSchema] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "NoneType": {"type": "null"},
    "list": {"type": "array"},
    "dict": {"type": "object"},
}
_LIST_OF = re.compile(r"list of (\w+) with length \d+")
_PARAM_TYPES: dict[str, JSONSchema] = {
    "STRING": {"type": "string"},
    "NUMBER": {"type": "number"},
    "INTEGER": {"type": "integer"},
    "FLOAT": {"type": "number"},
    "BOOLEAN": {"type": "boolean"},
    "BOOL": {"type": "boolean"},
    "ENUM": {"type": "string"},
    "ARRAY": {"type": "array"},
    "OBJECT": {"type": "object"},
}


def is_toolbench_tool(data: dict[str, Any]) -> bool:
    return "tool_name" in data and isinstance(data.get("api_list"), list)


def is_toolbench_query(data: dict[str, Any]) -> bool:
    """A ToolBench query record (``query`` + ``api_list``, possibly wrapped in ``record``)."""
    record: dict[str, Any] = data["record"] if isinstance(data.get("record"), dict) else data
    return "query" in record and isinstance(record.get("api_list"), list) and "tool_name" not in record


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def build_toolbench_spec(data: dict[str, Any], source: Path, sha256: str) -> Spec:
    tool = str(data.get("tool_name") or source.stem)
    tool_slug = slug(tool) or "tool"
    operations: list[Operation] = []
    skipped: list[SkippedOperation] = []
    taken: set[str] = set()
    for i, api in enumerate(data["api_list"]):
        pointer = f"/api_list/{i}"
        if not isinstance(api, dict) or not isinstance(api.get("api_name"), str) or not api["api_name"].strip():
            skipped.append(SkippedOperation("*", f"/{tool_slug}", pointer, "the API entry has no 'api_name'"))
            continue
        method = str(api.get("method") or "GET").upper()
        op_id = _unique(slug(api["api_name"]) or "api", taken)
        path = f"/{tool_slug}/{op_id}"
        if method not in _METHODS:
            skipped.append(SkippedOperation(method, path, pointer + "/method", f"unknown HTTP method {method!r}"))
            taken.discard(op_id)
            continue
        operations.append(_operation(api, op_id, method, path, pointer))
    return Spec(
        title=tool,
        source=source,
        sha256=sha256,
        source_format="toolbench",
        version="",
        base_path="",
        operations=tuple(operations),
        skipped=tuple(skipped),
        description=str(data.get("tool_description") or ""),
    )


def _unique(name: str, taken: set[str]) -> str:
    if name[0].isdigit():
        name = "api_" + name
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _operation(api: dict[str, Any], op_id: str, method: str, path: str, pointer: str) -> Operation:
    params: dict[str, tuple[bool, JSONSchema, str]] = {}
    for key, required in (("required_parameters", True), ("optional_parameters", False)):
        for raw in api.get(key) or ():
            if isinstance(raw, dict) and isinstance(raw.get("name"), str) and raw["name"] not in params:
                params[raw["name"]] = (required, parameter_schema(raw, required), str(raw.get("description") or ""))
    parameters: tuple[Parameter, ...] = ()
    body = None
    if method in _BODY_METHODS:
        required_names = [name for name, (req, _, _) in params.items() if req]
        schema: JSONSchema = {"type": "object", "properties": {n: s for n, (_, s, _) in params.items()}}
        if required_names:
            schema["required"] = required_names
        body = RequestBody(bool(required_names), {"application/json": schema})
    else:
        parameters = tuple(Parameter(n, "query", req, s, "form", True, d) for n, (req, s, d) in params.items())
    response = response_schema(api.get("template_response"), {n: s for n, (_, s, _) in params.items()})
    description = str(api.get("api_description") or "")
    return Operation(
        operation_id=op_id,
        method=method,
        path=path,
        pointer=pointer,
        summary=str(api["api_name"]),
        description=description,
        tags=(str(api["category_name"]),) if api.get("category_name") else (),
        parameters=parameters,
        request_body=body,
        responses=(ResponseSpec("200", {"application/json": response}, description="OK"),),
    )


def parameter_schema(raw: dict[str, Any], required: bool) -> JSONSchema:
    kind = str(raw.get("type") or "STRING").upper()
    if kind.startswith("DATE"):
        schema: JSONSchema = {"type": "string", "format": "date"}
    else:
        schema = dict(_PARAM_TYPES.get(kind, {"type": "string"}))
    values = next((raw[k] for k in ("enum", "values", "options") if isinstance(raw.get(k), list)), None)
    if kind == "ENUM" and values:
        schema["enum"] = [str(v) for v in values]
    if raw.get("description"):
        schema["description"] = str(raw["description"])
    default = _typed(raw.get("default"), schema["type"])
    if default is not None and ("enum" not in schema or default in schema["enum"]):
        if not required:
            schema["default"] = default
        schema["examples"] = [default]
    return schema


def _typed(value: Any, kind: str) -> Any:
    """A ToolBench default (usually a string) as a value of the parameter's type, or None."""
    if value is None or value == "":
        return None
    if kind in ("number", "integer"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        try:
            number = float(str(value))
        except ValueError:
            return None
        return int(number) if number.is_integer() and "." not in str(value) else number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        return {"true": True, "false": False}.get(str(value).strip().lower())
    if kind in ("array", "object"):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        return value if isinstance(value, list if kind == "array" else dict) else None
    return value if isinstance(value, str) else str(value)


def response_schema(template: Any, params: dict[str, JSONSchema]) -> JSONSchema:
    """The 200 schema: from ``template_response``, else an object echoing the parameters."""
    if isinstance(template, str) and template.lstrip()[:1] in ("{", "["):
        template = parse_truncated_json(template)
    if template is None:
        echo = {name: {k: v for k, v in s.items() if k != "default"} for name, s in params.items()}
        return {"type": "object", "properties": {**echo, "result": {"type": "string"}}, "required": ["result"]}
    return template_schema(template)


def template_schema(template: Any) -> JSONSchema:
    if isinstance(template, dict):
        props = {str(k): template_schema(v) for k, v in template.items() if k != "_list_length"}
        schema: JSONSchema = {"type": "object", "properties": props}
        if props:
            schema["required"] = list(props)
        return schema
    if isinstance(template, list):
        if not template:
            return {"type": "array"}
        first = template[0]
        if len(template) == 1 and isinstance(first, str) and _LIST_OF.fullmatch(first.strip()):
            return template_schema(first)  # ["list of str with length 8"] is the list itself
        return {"type": "array", "items": template_schema(first)}
    if isinstance(template, str):
        text = template.strip()
        if text in _SCALARS:
            return dict(_SCALARS[text])
        match = _LIST_OF.fullmatch(text)
        if match:
            return {"type": "array", "items": dict(_SCALARS.get(match.group(1), {}))}
        if text == "empty list":
            return {"type": "array"}
        return {"type": "string", "examples": [template]}
    if isinstance(template, bool):
        return {"type": "boolean"}
    if isinstance(template, int):
        return {"type": "integer"}
    if isinstance(template, float):
        return {"type": "number"}
    return {"type": "null"} if template is None else {}


def parse_truncated_json(text: str) -> Any:
    """JSON text, or text ToolBench cut off mid-way closed after its last complete member;
    None when neither parses."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    stack: list[str] = []
    cuts: list[tuple[int, str]] = []  # (index of a ',' outside strings, closers needed there)
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
        elif ch == ",":
            cuts.append((i, "".join(reversed(stack))))
    for index, closers in reversed(cuts[-64:]):
        try:
            return json.loads(text[:index] + closers)
        except ValueError:
            continue
    return None

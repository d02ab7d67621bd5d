"""Keyword values of OpenAPI schema objects made valid JSON Schema 2020-12 (pure helpers of
:mod:`.schema_convert`): type names, numbers, OAS 3.0 boolean exclusive bounds, integer format
bounds, ``nullable``."""

from __future__ import annotations

from typing import Any

TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
TYPE_ALIASES = {"int": "integer", "long": "integer", "float": "number", "double": "number", "bool": "boolean"}
INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
ANNOTATIONS = ("title", "description", "default", "examples", "readOnly", "writeOnly", "deprecated")
EXPANDABLE = "x-expandable"
"""The annotation the converter gives a response field that Stripe's ``x-expansionResources``
marks expandable: an ``anyOf`` of the id and the objects it expands to. The generator gives such a
field the first branch that is not an object (the id), as the API answers unless asked to expand."""
# keywords through which a schema can reject null even without a `type`
NULL_BLOCKERS = ("$ref", "allOf", "anyOf", "oneOf", "not", "const", "if")


def type_names(value: Any) -> str | list[str] | None:
    raw = value if isinstance(value, list) else [value]
    names: list[str] = []
    for item in raw:
        name = TYPE_ALIASES.get(item, item) if isinstance(item, str) else None
        if name in TYPES and name not in names:
            names.append(name)
    if not names:
        return None
    return names[0] if len(names) == 1 and not isinstance(value, list) else names


def as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def as_count(value: Any) -> int | None:
    number = as_number(value)
    if number is None or number < 0 or (isinstance(number, float) and not number.is_integer()):
        return None
    return int(number)


def dependent_required(value: dict[str, Any]) -> dict[str, list[str]]:
    return {
        name: list(dict.fromkeys(n for n in names if isinstance(n, str)))
        for name, names in value.items() if isinstance(names, list)
    }


def exclusive_bounds(exclusive: dict[str, Any], out: dict[str, Any]) -> None:
    """OAS 3.0 boolean exclusive bounds -> 2020-12 numeric ones; numeric ones kept."""
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if key not in exclusive:
            continue
        value = exclusive[key]
        if isinstance(value, bool):
            if value and bound in out:
                out[key] = out.pop(bound)
        else:
            number = as_number(value)
            if number is not None:
                out[key] = number


def integer_bounds(out: dict[str, Any]) -> None:
    bounds = INT_BOUNDS.get(out.get("format"))  # type: ignore[arg-type]
    if bounds is None:
        return
    types = out.get("type")
    if types != "integer" and not (isinstance(types, list) and "integer" in types):
        return
    if "minimum" not in out and "exclusiveMinimum" not in out:
        out["minimum"] = bounds[0]
    if "maximum" not in out and "exclusiveMaximum" not in out:
        out["maximum"] = bounds[1]


def allow_null(out: dict[str, Any]) -> dict[str, Any]:
    """``out`` widened to admit null (``nullable: true``)."""
    if any(key in out for key in NULL_BLOCKERS):
        annotations = {key: out.pop(key) for key in ANNOTATIONS if key in out}
        return {"anyOf": [out, {"type": "null"}], **annotations}
    types = out.get("type")
    if isinstance(types, str) and types != "null":
        out["type"] = [types, "null"]
    elif isinstance(types, list) and "null" not in types:
        out["type"] = [*types, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out

"""Merging two schema nodes into their exact conjunction (``allOf``), one combiner per keyword.

What cannot be combined exactly is kept whole under ``RESIDUAL``, which the merged node's
validator enforces, so a merged node accepts exactly the values of the conjunction.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from simulator.canonical import canonical_json

from .keyword_sets import ANNOTATIONS, MAX_KEYS, MIN_KEYS

Schema = dict[str, Any] | bool

RESIDUAL = "$datagen:residual"

# unevaluated* stay out of residuals: on a merged node they see the union of all properties.
_OBJECT_GROUP = ("properties", "patternProperties", "additionalProperties")
_ARRAY_GROUP = ("items", "prefixItems")
_CONDITIONAL_GROUP = ("if", "then", "else")



def _equal(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and a == b)


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False



def merge_nodes(a: Schema, b: Schema) -> Schema:
    """The conjunction of two resolved nodes; ``False`` when they contradict outright. What cannot
    be combined exactly is kept whole under ``RESIDUAL`` (see the module docstring)."""
    if a is False or b is False:
        return False
    if a is True or not b:
        return a if a is not True else b
    if not a or b is True:
        return b if b is not True else a
    assert isinstance(a, dict) and isinstance(b, dict)
    out = dict(a)
    residual = _object_residuals(a, b)
    for key, theirs in b.items():
        if key == RESIDUAL:
            continue
        if key not in out:
            out[key] = theirs
            continue
        ours = out[key]
        if _equal(ours, theirs) or key in ANNOTATIONS or key.startswith("x-"):
            continue
        combined = _combine(key, ours, theirs, a, b)
        if combined is _CONFLICT:
            return False
        if combined is _RESIDUAL:
            group = next((g for g in (_ARRAY_GROUP, _CONDITIONAL_GROUP) if key in g), (key,))
            piece = {k: b[k] for k in group if k in b}
            if piece not in residual:
                residual.append(piece)
        else:
            out[key] = combined
    for side in (a, b):
        if side.get("additionalProperties") is False and not _restrict_keys(out, side):
            return False
    if residual:
        out[RESIDUAL] = residual
    else:
        out.pop(RESIDUAL, None)
    return out


def _object_residuals(a: dict[str, Any], b: dict[str, Any]) -> list[Any]:
    """Both sides' residuals, plus each side's object group where it limits the other's properties
    (``additionalProperties`` applies to the properties its *own* node names, so it cannot merge)."""
    residual: list[Any] = list(a.get(RESIDUAL, ())) + list(b.get(RESIDUAL, ()))
    for side, other in ((a, b), (b, a)):
        if any(side.get(key, True) is not True for key in _OBJECT_GROUP[1:]) and any(
            key in other for key in ("properties", "patternProperties")
        ):
            residual.append({key: side[key] for key in _OBJECT_GROUP if key in side})
    return residual


def _restrict_keys(out: dict[str, Any], side: dict[str, Any]) -> bool:
    """Drop from ``out`` the properties ``side`` forbids; False when a forbidden one is required."""
    allowed = side.get("properties", {})
    patterns = list(side.get("patternProperties", {}))
    properties = out.get("properties")
    if not isinstance(properties, dict) or not isinstance(allowed, dict):
        return True

    def permitted(name: str) -> bool:
        return name in allowed or any(_search(pattern, name) for pattern in patterns)

    if any(not permitted(name) for name in out.get("required", ()) if isinstance(name, str)):
        return False
    out["properties"] = {name: schema for name, schema in properties.items() if permitted(name)}
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _combine(key: str, ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    """One keyword present, with different values, on both nodes: the exact combined value,
    ``_CONFLICT`` (no value satisfies both) or ``_RESIDUAL`` (keep ``b``'s keyword aside)."""
    if key in MIN_KEYS or key in MAX_KEYS:
        if not (_is_number(ours) and _is_number(theirs)):
            return _RESIDUAL
        return max(ours, theirs) if key in MIN_KEYS else min(ours, theirs)
    combiner = _COMBINERS.get(key)
    return _RESIDUAL if combiner is None else combiner(ours, theirs, a, b)


# one per keyword that combines exactly; each returns _RESIDUAL for values of another shape


def _combine_type(ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    mine = [ours] if isinstance(ours, str) else list(ours)
    other = [theirs] if isinstance(theirs, str) else list(theirs)
    both = [t for t in mine if t in other or (t == "integer" and "number" in other)]
    both += [t for t in other if t == "integer" and "number" in mine and t not in both]
    return both or _CONFLICT


def _combine_enum(ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    if not (isinstance(ours, list) and isinstance(theirs, list)):
        return _RESIDUAL
    keys = {canonical_json(value) for value in theirs}
    return [value for value in ours if canonical_json(value) in keys] or _CONFLICT


def _combine_const(ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    return _CONFLICT if canonical_json(ours) != canonical_json(theirs) else ours


def _combine_required(ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    if not (isinstance(ours, list) and isinstance(theirs, list)):
        return _RESIDUAL
    return ours + [name for name in theirs if name not in ours]


def _combine_unique_items(ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    return bool(ours) or bool(theirs)


def _combine_properties(ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    if not (isinstance(ours, dict) and isinstance(theirs, dict)):
        return _RESIDUAL
    merged = dict(ours)
    for name, schema in theirs.items():
        existing = merged.get(name)
        merged[name] = schema if existing is None or _equal(existing, schema) else {"allOf": [existing, schema]}
    return merged


def _combine_additional(ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    if ours is False or theirs is False:
        return False
    return theirs if ours is True else ours if theirs is True else {"allOf": [ours, theirs]}


def _combine_items(ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    if "prefixItems" in a or "prefixItems" in b:
        return _RESIDUAL  # `items` then means "after the prefix", which differs per side
    if ours is False or theirs is False:
        return False
    return {"allOf": [ours, theirs]}


def _combine_multiple_of(ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    if not (isinstance(ours, int) and isinstance(theirs, int) and _is_number(ours) and _is_number(theirs)):
        return _RESIDUAL
    return math.lcm(ours, theirs)


def _combine_dependent_required(ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    if not (isinstance(ours, dict) and isinstance(theirs, dict)):
        return _RESIDUAL
    merged = dict(ours)
    for name, names in theirs.items():
        merged[name] = list(dict.fromkeys([*merged.get(name, []), *names]))
    return merged


def _combine_keep_ours(ours: Any, theirs: Any, a: dict[str, Any], b: dict[str, Any]) -> Any:
    return ours


_COMBINERS: dict[str, Callable[[Any, Any, dict[str, Any], dict[str, Any]], Any]] = {
    "type": _combine_type,
    "enum": _combine_enum,
    "const": _combine_const,
    "required": _combine_required,
    "uniqueItems": _combine_unique_items,
    "properties": _combine_properties,
    "patternProperties": _combine_properties,
    "additionalProperties": _combine_additional,
    "unevaluatedProperties": _combine_additional,
    "items": _combine_items,
    "multipleOf": _combine_multiple_of,
    "dependentRequired": _combine_dependent_required,
    "$defs": _combine_keep_ours,  # refs point at the root's $defs; a sub-node's own are never read
    "definitions": _combine_keep_ours,
}


class _Marker:
    pass


_CONFLICT: Any = _Marker()
_RESIDUAL: Any = _Marker()

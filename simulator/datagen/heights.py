"""Recursion heights: how many ``$ref`` expansions the smallest value of a schema needs.

Only what a value *must* contain counts (required properties, ``minItems`` items, the cheapest
``anyOf``/``oneOf`` branch), so near the depth cap the generator can pick the alternatives that
end the recursion soonest; ``inf`` means no finite value exists. Pure functions of the schema;
:class:`.plan.SchemaPlan` memoises them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .keyword_sets import ARRAY_KEYS, OBJECT_KEYS, SCALAR_TYPES

DefKey = Callable[[str], "str | None"]


def height_table(defs: dict[str, Any], def_key: DefKey) -> dict[str, float]:
    """The height of every ``$defs`` entry (``def_key`` maps a ``$ref`` to its entry's key)."""
    table = dict.fromkeys(defs, math.inf)
    changed = True
    while changed:  # heights only decrease, and each round fixes at least one more key
        changed = False
        for key, schema in defs.items():
            height = height_with(schema, table, def_key)
            if height < table[key]:
                table[key] = height
                changed = True
    return table


def height_with(schema: Any, table: dict[str, float], def_key: DefKey) -> float:
    """The height of ``schema``, given the heights of the ``$defs`` entries in ``table``."""
    if not isinstance(schema, dict):
        return math.inf if schema is False else 0
    height = 0.0
    ref = schema.get("$ref")
    if isinstance(ref, str):
        key = def_key(ref)
        if key is not None:
            height = table.get(key, 0) + 1
    for part in schema.get("allOf", ()):
        height = max(height, height_with(part, table, def_key))
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list) and branches:
            height = max(height, min(height_with(b, table, def_key) for b in branches))
    if height == math.inf:
        return height
    declared = schema.get("type")
    kinds = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else None
    if kinds is None:
        if any(k in schema for k in OBJECT_KEYS):
            kinds = ["object"]
        elif any(k in schema for k in ARRAY_KEYS):
            kinds = ["array"]
        else:
            return height
    if any(kind in SCALAR_TYPES for kind in kinds):
        return height
    return max(height, _contents_height(schema, kinds, table, def_key))


def _contents_height(schema: dict[str, Any], kinds: list[str], table: dict[str, float], def_key: DefKey) -> float:
    """The height of what an object or array value of ``schema`` must hold."""
    best = math.inf
    if "object" in kinds:
        properties = schema.get("properties", {})
        required = [name for name in schema.get("required", ()) if isinstance(name, str)]
        best = max((height_with(properties.get(name, True), table, def_key) for name in required), default=0)
    if "array" in kinds:
        minimum = schema.get("minItems", 0)
        prefix = schema.get("prefixItems", [])
        needed = [height_with(item, table, def_key) for item in prefix[:minimum]]
        if minimum > len(prefix):
            needed.append(height_with(schema.get("items", True), table, def_key))
        best = min(best, max(needed, default=0))
    return best

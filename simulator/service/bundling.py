"""Sub-schemas made self-contained with only the ``$defs`` they reach.

The shaper compiles each schema node it meets (to validate, to generate) as a document of its
own. :func:`~simulator.spec.navigation.sub_schema` gives the node its root's whole ``$defs``: a
real spec's response schema carries hundreds (stripe's: ~500, 600 KB of JSON), so every node's
compile converted and meta-validated all of them (~3 ms a node, a third of certify's time on
stripe). :class:`Bundler` gives the node the definitions its ``$ref``\\s reach instead, where
that provably compiles and validates the same:

* ``$defs`` asserts nothing, so definitions no ``$ref`` reaches change no verdict, and every
  node the generator walks is reached through a ``$ref`` it follows to the same definition;
* they could still make the whole document fail to compile (jsonschema_rs meta-validates every
  definition and fetches every remote ``$ref``): the bundler compiles the root's ``$defs`` once,
  and where that fails it gives the whole ``$defs`` (the same failure, as before);
* a ``$ref`` that is not a local JSON pointer, a percent-encoded one, or an identifier keyword
  (``$id``, ``$anchor``, ``$dynamicRef``...) anywhere in the node or the ``$defs`` makes it give
  the whole ``$defs`` too: it follows plain ``#/$defs/name...`` pointers only.
"""

from __future__ import annotations

from typing import Any

from simulator.canonical import unescape_token
from simulator.spec.model import JSONSchema
from simulator.spec.navigation import sub_schema
from simulator.state.memo import BoundedMemo

from .validation import compile_schema

# keywords that name a schema resource or resolve dynamically: not followed, so never dropped
_IDENTIFIERS = frozenset({"$id", "$anchor", "$dynamicAnchor", "$dynamicRef", "$recursiveAnchor",
                          "$recursiveRef", "$schema", "$vocabulary"})
_MEMO = 20_000


def reached_defs(value: Any) -> frozenset[str] | None:
    """The ``$defs`` entries that the ``$ref``\\s anywhere in ``value`` name directly (data
    included: a superset is harmless); None when one is not a plain local pointer, or an
    identifier keyword appears."""
    names: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                if key in _IDENTIFIERS:
                    return None
                if key == "$ref":
                    name = _def_name(sub)
                    if name is None:
                        return None
                    if name:
                        names.add(name)
                elif isinstance(sub, dict | list):
                    stack.append(sub)
        elif isinstance(item, list):
            stack.extend(sub for sub in item if isinstance(sub, dict | list))
    return frozenset(names)


def _def_name(ref: Any) -> str | None:
    """``"name"`` for ``#/$defs/name...``; ``""`` for a pointer into the node itself (the same
    node in either document); None for anything else."""
    if not isinstance(ref, str) or "%" in ref:
        return None
    if ref == "#":
        return ""
    if not ref.startswith("#/"):
        return None
    tokens = ref[2:].split("/")
    if tokens[0] != "$defs":
        return ""
    if len(tokens) < 2 or not tokens[1]:
        return None
    return unescape_token(tokens[1])


class Bundler:
    """``sub_schema(root, schema)`` with only the ``$defs`` entries ``schema`` reaches, where
    that is safe (module docstring); memoised per definition and per root ``$defs`` (each
    memo entry holds its object, so ids stay unique while it lives)."""

    def __init__(self) -> None:
        self._refs: dict[int, tuple[Any, frozenset[str] | None]] = BoundedMemo(_MEMO)
        self._safe: dict[int, tuple[Any, bool]] = BoundedMemo(_MEMO)

    def self_contained(self, root: JSONSchema, schema: JSONSchema) -> JSONSchema:
        defs = root.get("$defs")
        if not isinstance(defs, dict) or "$defs" in schema or not self._safe_defs(defs):
            return sub_schema(root, schema)  # (in sub_schema's order: a root without $defs takes any schema)
        pending = reached_defs(schema)
        if pending is None:
            return sub_schema(root, schema)
        reached: set[str] = set()
        stack = list(pending)
        while stack:
            name = stack.pop()
            if name in reached or name not in defs:
                continue
            reached.add(name)
            stack.extend(self._def_refs(defs[name]) or ())
        return {**schema, "$defs": {name: value for name, value in defs.items() if name in reached}}

    def _def_refs(self, definition: Any) -> frozenset[str] | None:
        hit = self._refs.get(id(definition))
        if hit is None:
            hit = self._refs[id(definition)] = (definition, reached_defs(definition))
        return hit[1]

    def _safe_defs(self, defs: dict[str, Any]) -> bool:
        """Whether every definition is plain (local pointers, no identifiers) and the whole
        ``$defs`` compiles (each definition a valid schema): then leaving some out changes
        neither whether a document compiles nor what it accepts."""
        hit = self._safe.get(id(defs))
        if hit is None:
            safe = all(self._def_refs(value) is not None for value in defs.values())
            if safe:
                try:
                    compile_schema({"$defs": defs})
                except Exception:  # any failure: keep the whole $defs, as before
                    safe = False
            hit = self._safe[id(defs)] = (defs, safe)
        return hit[1]

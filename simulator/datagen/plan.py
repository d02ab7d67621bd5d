"""The compiled form of one self-contained schema: ``$ref`` lookup, ``allOf`` merging, recursion heights.

A :class:`SchemaPlan` owns a private copy of the schema and memoises, per sub-schema, what the
generator asks again and again: the resolved (``$ref``-followed, ``allOf``-merged) node, its JSON
types, a validator for it, its valid ``enum`` members and examples, and how deep its smallest
value must recurse. Memo tables are keyed by ``id()``; that is safe because the plan pins every object it keys on
(:meth:`SchemaPlan.pin`), so no id is reused while the plan lives.

Merging is *exact*: a keyword pair that cannot be combined precisely is kept whole in a
residual list (``RESIDUAL`` key) that the node's validator enforces, so a merged node's
validator accepts exactly the values of the conjunction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar
from urllib.parse import unquote

import jsonschema_rs

from simulator.canonical import PointerError, json_bytes, resolve_tokens, unescape_token
from simulator.errors import SimulatorError

from .heights import height_table, height_with
from .keyword_sets import (
    ARRAY_KEYS,
    NUMBER_FORMATS,
    NUMBER_KEYS,
    OBJECT_KEYS,
    STRING_KEYS,
)
from .merge import RESIDUAL, Schema, merge_nodes
from .text_memo import TextMemo


class GenerationError(SimulatorError, ValueError):
    """No valid value could be generated for a schema; the message says where and why.

    ``retryable`` is False when another seed cannot help (a ``false`` schema, an unresolvable
    ``$ref``, a recursion with no finite value, contradictory constraints).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class OutOfBudget(GenerationError):
    """Backtracking over composition went on too long: stop the attempt, try no more branches."""


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON value, as plain dicts and lists."""
    return json.loads(json_bytes(value))


def iter_refs(schema: Any) -> Iterator[str]:
    """Every ``$ref`` string anywhere inside ``schema``."""
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                yield ref
            stack.extend(value for key, value in item.items() if key not in ("enum", "const", "examples"))
        elif isinstance(item, list):
            stack.extend(item)


def _pointer_tokens(ref: str) -> list[str]:
    if ref in ("#", ""):
        return []
    if not ref.startswith("#/"):
        raise GenerationError(
            f"$ref {ref!r} is not local: the schema must be self-contained (refs like '#/$defs/Name')",
            retryable=False,
        )
    return [unescape_token(unquote(token)) for token in ref[2:].split("/")]


_SHARED_SIZE = 8192
_NO_FACT = object()
T = TypeVar("T")


def _compiled_validator(body: Any) -> Any:
    try:
        return jsonschema_rs.validator_for(body, validate_formats=True)
    except (ValueError, jsonschema_rs.ValidationError):
        return None


shared_validator: TextMemo[Any] = TextMemo(_compiled_validator, _SHARED_SIZE)
"""``jsonschema_rs.validator_for(body)`` (formats checked), None if it can't be built; one
per JSON text in the process: plans of one spec's nodes repeat the same sub-schemas (on
stripe, nine compiles in ten were of a text compiled before), and a validator is a pure
function of its schema's text that never changes. Bounded: the oldest are forgotten."""


class SchemaPlan:
    """Memoised facts about one schema; build it once per schema (``compile_schema`` caches it)."""

    def __init__(self, root: Schema) -> None:
        self.root = root
        self.defs: dict[str, Any] = root.get("$defs", {}) if isinstance(root, dict) else {}
        if not isinstance(self.defs, dict):
            self.defs = {}
        try:
            self.validator = jsonschema_rs.validator_for(root, validate_formats=True)
        except (ValueError, jsonschema_rs.ValidationError) as error:
            raise GenerationError(f"the schema itself is invalid: {error}", retryable=False) from error
        self._keep: list[Any] = []
        self._pinned: dict[int, Any] = {}
        self._resolved: dict[int, Schema] = {}
        self._resolving: set[int] = set()
        self._derived: dict[Hashable, Schema] = {}
        self._facts: dict[tuple[int, str], Any] = {}
        self._validators: dict[int, Any] = {}
        self._types: dict[int, tuple[str, ...] | None] = {}
        self._enums: dict[int, list[Any]] = {}
        self._examples: dict[int, list[Any]] = {}
        self._refs_by_def: dict[str, list[str]] = {}
        self._heights: dict[int, float] = {}
        self._def_heights: dict[str, float] | None = None

    # --- $ref --------------------------------------------------------------------------------

    def lookup(self, ref: str) -> Any:
        try:
            node = resolve_tokens(self.root, _pointer_tokens(ref))
        except PointerError:
            raise GenerationError(f"$ref {ref!r} points at nothing in the schema", retryable=False) from None
        if not isinstance(node, dict | bool):
            raise GenerationError(f"$ref {ref!r} does not point at a schema", retryable=False)
        return node

    @staticmethod
    def def_key(ref: str) -> str | None:
        tokens = _pointer_tokens(ref) if ref.startswith("#") else []
        return tokens[1] if len(tokens) == 2 and tokens[0] in ("$defs", "definitions") else None

    # --- resolution and merging ------------------------------------------------------------

    def resolve(self, schema: Schema) -> Schema:
        """``schema`` with its top-level ``$ref`` followed and ``allOf`` merged into one node."""
        if isinstance(schema, bool):
            return schema
        found = self._resolved.get(id(schema))
        if found is not None:
            return found
        if id(schema) in self._resolving:
            where = schema.get("$ref", "an allOf")
            raise GenerationError(
                f"{where} refers back to itself through $ref/allOf only; no value can be built",
                retryable=False,
            )
        self._resolving.add(id(schema))
        try:
            node: Schema = schema
            if "$ref" in schema:
                target = self.resolve(self.lookup(schema["$ref"]))
                rest = self.keep({key: value for key, value in schema.items() if key != "$ref"})
                node = self.merge(self.resolve(rest), target) if rest else target
            elif "allOf" in schema:
                node = self.keep({key: value for key, value in schema.items() if key != "allOf"})
                for part in schema["allOf"]:
                    node = self.merge(node, self.resolve(part))
        finally:
            self._resolving.discard(id(schema))
        self._resolved[self.pin(schema)] = node
        return node

    def keep(self, item: Any) -> Any:
        self._keep.append(item)
        return item

    def pin(self, item: Any) -> int:
        """``id(item)``, with ``item`` kept alive so that the id is never reused while memoised."""
        key = id(item)
        self._pinned.setdefault(key, item)
        return key

    def derived(self, key: Hashable, build: Callable[[], Schema]) -> Schema:
        """A schema derived from others (a merge, a node minus a keyword), built once and kept."""
        found = self._derived.get(key)
        if found is None:
            found = self._derived[key] = self.keep(build())
        return found

    def node_fact(self, node: Any, kind: str, build: Callable[[], T]) -> T:
        """``build()``, a pure function of ``node`` (a node of this plan, pinned here) that the
        walk needs each time it meets the node, worked out once per ``kind``."""
        key = (id(node), kind)
        found = self._facts.get(key, _NO_FACT)
        if found is _NO_FACT:
            self.pin(node)
            found = self._facts[key] = build()
        return found  # type: ignore[no-any-return]

    def merged_branch(self, node: dict[str, Any], keyword: str, index: int) -> Schema:
        """Branch ``index`` of ``node[keyword]`` (``oneOf``/``anyOf``) merged with the rest of
        the node, built once."""
        rest = self.derived((id(node), keyword), lambda: {k: v for k, v in node.items() if k != keyword})
        branch = node[keyword][index]
        return self.derived((id(node), keyword, index), lambda: self.merge(rest, self.resolve(branch)))

    def unexpanded_first(self, branches: list[Any]) -> list[int]:
        """The order the walk takes an expandable field's ``anyOf`` branches in
        (:data:`~simulator.spec.jsonschema.keywords.EXPANDABLE`): as listed, those that are not
        objects (the id) first, so the value is the id, as the API answers unless asked to expand."""

        def is_object(branch: Any) -> bool:
            try:
                node = self.resolve(branch)
            except GenerationError:
                return False  # the walk meets the error when it takes the branch
            return isinstance(node, dict) and "object" in (self.types(node) or ())

        return sorted(range(len(branches)), key=lambda i: is_object(branches[i]))

    def merge(self, a: Schema, b: Schema) -> Schema:
        """The conjunction of two resolved nodes; ``False`` when they contradict outright."""
        return merge_nodes(a, b)

    # --- per-node facts ----------------------------------------------------------------------

    def types(self, node: dict[str, Any]) -> tuple[str, ...] | None:
        """The JSON types a node allows (``integer`` kept apart from ``number``); None = any."""
        key = id(node)
        if key in self._types:
            return self._types[key]
        declared = node.get("type")
        found: tuple[str, ...] | None
        if isinstance(declared, str):
            found = (declared,)
        elif isinstance(declared, list):
            found = tuple(t for t in declared if isinstance(t, str))
        elif any(k in node for k in OBJECT_KEYS):
            found = ("object",)
        elif any(k in node for k in ARRAY_KEYS):
            found = ("array",)
        elif node.get("format") in NUMBER_FORMATS:
            found = (NUMBER_FORMATS[node["format"]],)
        elif any(k in node for k in NUMBER_KEYS):
            found = ("number",)
        elif any(k in node for k in STRING_KEYS) or isinstance(node.get("format"), str):
            found = ("string",)
        else:
            found = None
        self._types[self.pin(node)] = found
        return found

    def validator_for(self, schema: Schema) -> Any:
        """A compiled validator for a sub-schema (or a derived node) of this plan; None if it can't be built."""
        key = id(schema)
        if key in self._validators:
            return self._validators[key]
        body: Any = schema
        if isinstance(schema, dict) and RESIDUAL in schema:
            stripped = {k: v for k, v in schema.items() if k != RESIDUAL}
            body = {"allOf": [stripped, *schema[RESIDUAL]]}
        refs = list(iter_refs(body))
        if refs:
            body = {"allOf": [body], "$defs": self._closure(refs)}
        validator = shared_validator(body)
        self._validators[self.pin(schema)] = validator
        return validator

    def _closure(self, refs: list[str]) -> dict[str, Any]:
        """The ``$defs`` entries that ``refs`` need, directly or through each other."""
        found: dict[str, Any] = {}
        pending = [key for key in map(self.def_key, refs) if key is not None]
        while pending:
            def_key = pending.pop()
            if def_key in found or def_key not in self.defs:
                continue
            found[def_key] = self.defs[def_key]
            pending.extend(self._def_refs(def_key))
        return found

    def _def_refs(self, def_key: str) -> list[str]:
        refs = self._refs_by_def.get(def_key)
        if refs is None:
            keys = (self.def_key(ref) for ref in iter_refs(self.defs[def_key]))
            refs = self._refs_by_def[def_key] = [key for key in keys if key is not None]
        return refs

    def accepts(self, schema: Schema, value: Any) -> bool:
        validator = self.validator_for(schema)
        return True if validator is None else bool(validator.is_valid(value))

    def enum_members(self, node: dict[str, Any]) -> list[Any]:
        """The ``const`` value or ``enum`` members that satisfy every other keyword of the node too."""
        key = id(node)
        if key not in self._enums:
            if "const" in node:
                members = [node["const"]]
            else:
                members = node["enum"] if isinstance(node["enum"], list) else []
            self._enums[self.pin(node)] = [member for member in members if self.accepts(node, member)]
        return self._enums[key]

    def examples(self, node: dict[str, Any]) -> list[Any]:
        """``examples``, OpenAPI ``example`` and ``default`` values that validate against the node."""
        key = id(node)
        if key not in self._examples:
            candidates = list(node["examples"]) if isinstance(node.get("examples"), list) else []
            candidates += [node[k] for k in ("example", "default") if k in node]
            valid: list[Any] = []
            for candidate in candidates:
                if candidate not in valid and self.accepts(node, candidate):
                    valid.append(candidate)
            self._examples[self.pin(node)] = valid
        return self._examples[key]

    # --- recursion height (see heights.py) -----------------------------------------------------

    def height(self, schema: Schema) -> float:
        """How many ``$ref`` expansions the smallest value of ``schema`` needs; ``inf`` = no finite value.

        Only what a value *must* contain counts (required properties, ``minItems`` items, the
        cheapest ``anyOf``/``oneOf`` branch), so near the depth cap the generator can pick the
        alternatives that end the recursion soonest.
        """
        table = self._height_table()
        key = id(schema)
        if key not in self._heights:
            self._heights[self.pin(schema)] = height_with(schema, table, self.def_key)
        return self._heights[key]

    def infinite_defs(self) -> list[str]:
        """The ``$defs`` keys with no finite value (their required properties recurse forever)."""
        return sorted(key for key, height in self._height_table().items() if height == math.inf)

    def _height_table(self) -> dict[str, float]:
        if self._def_heights is None:
            self._def_heights = height_table(self.defs, self.def_key)
        return self._def_heights

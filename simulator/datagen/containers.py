"""Arrays and objects: how many items, which properties, which extra keys.

:class:`ContainerValues` is a part of :class:`simulator.datagen.walk.Generation`, kept in its own
module; it calls back into the walk (``generate``) for every item and property value.
"""

from __future__ import annotations

import contextlib
import re
from functools import partial
from random import Random
from typing import Any

from simulator.canonical import canonical_json, escape_token

from .names import is_person_field, member_name, singular
from .plan import GenerationError, OutOfBudget, Schema, SchemaPlan, json_copy
from .regex import PatternUnsupported, string_for_pattern
from .values import words

MAX_DEPTH = 4
"""From this nesting depth on, optional properties are left out and arrays are as short as allowed."""


class _Elided:
    """The type of :data:`ELIDED`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ELIDED"


ELIDED = _Elided()
"""Stands for a top-level property the walk was asked to skip (``CompiledSchema.generate``'s
``elide``): its key keeps its place, the caller puts the value in."""

# The four 64-bit draws of a node's digest, each kept for one kind of decision so that the
# decisions at a node stay independent of each other.
EXAMPLE_SLOT, PICK_SLOT, CHANCE_SLOT, PRESENT_SLOT = range(4)


def copy_json(value: Any) -> Any:
    return json_copy(value) if isinstance(value, dict | list) else value


def equality_key(value: Any) -> bytes:
    """JSON Schema equality: 1 == 1.0 and key order does not matter."""

    def normal(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, list):
            return [normal(x) for x in item]
        if isinstance(item, dict):
            return {k: normal(v) for k, v in item.items()}
        return item

    return canonical_json(normal(value))


def search_pattern(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


def merge_all(plan: SchemaPlan, schemas: list[Any]) -> Schema:
    merged: Schema = True
    for schema in schemas:
        merged = plan.merge(merged, plan.resolve(schema))
    return merged


_NO_MATCH: list[Any] = []  # shared: read only


def _matching(patterns: dict[str, Any], key: str) -> list[Any]:
    """The ``patternProperties`` schemas whose patterns match ``key``."""
    return [patterns[p] for p in patterns if search_pattern(p, key)]


class ObjectShape:
    """What :meth:`ContainerValues.object_value` reads of an object node before any random
    choice, worked out once per node of a plan (``SchemaPlan.node_fact``): each property's
    escaped pointer token and matching ``patternProperties`` schemas, the required names, whether
    it is a person's (:func:`~simulator.datagen.names.is_person_field`)."""

    __slots__ = ("additional", "members", "patterns", "person", "properties", "required", "required_set")

    def __init__(self, node: dict[str, Any]) -> None:
        self.properties: dict[str, Any] = node.get("properties") or {}
        self.required = [key for key in node.get("required", ()) if isinstance(key, str)]
        self.required_set = set(self.required)
        self.patterns: dict[str, Any] = node.get("patternProperties") or {}
        self.additional = node.get("additionalProperties", True)
        # (name, its pointer token, its schema, the patternProperties schemas matching it)
        patterns = self.patterns
        self.members = [(key, escape_token(key), schema, _matching(patterns, key) if patterns else _NO_MATCH)
                        for key, schema in self.properties.items()]
        self.person = any(is_person_field(key) for key in self.properties)


class ContainerValues:
    """Array and object generation; the walk (:class:`~simulator.datagen.walk.Generation`) supplies
    the randomness and ``generate`` for the values inside."""

    __slots__ = ()
    plan: SchemaPlan
    fill_path: str | None
    elided: frozenset[str]

    # provided by Generation
    def generate(self, schema: Schema, path: str, name: str | None, depth: int) -> Any:
        raise NotImplementedError

    def draws(self, path: str) -> tuple[int, ...]:
        raise NotImplementedError

    def chance(self, path: str, slot: int) -> float:
        raise NotImplementedError

    def unit(self, path: str, tag: str) -> float:
        raise NotImplementedError

    def below(self, path: str, tag: str, count: int) -> int:
        raise NotImplementedError

    def tagged_rng(self, path: str, tag: str) -> Random:
        raise NotImplementedError

    def salted(self, path: str, attempt: int) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def array_value(self, node: dict[str, Any], path: str, name: str | None, depth: int) -> list[Any]:
        plan = self.plan
        prefix = node.get("prefixItems", [])
        items = node.get("items", True)
        minimum = int(node.get("minItems", 0))
        maximum = node.get("maxItems")
        if plan.resolve(items) is False:
            maximum = len(prefix) if maximum is None else min(int(maximum), len(prefix))
        if depth >= MAX_DEPTH:
            count = minimum
        else:
            low = max(minimum, 1)
            high = max(low, 3)
            if maximum is not None:
                low, high = min(low, int(maximum)), min(high, int(maximum))
            count = low + self.draws(path)[CHANCE_SLOT] % (high - low + 1)
        if maximum is not None and minimum > int(maximum):
            raise GenerationError(
                f"at {path or '/'}: minItems {minimum} > maxItems {maximum}", retryable=False
            )
        item_name = singular(name) if name else None
        unique = bool(node.get("uniqueItems"))
        values: list[Any] = []
        seen: set[bytes] = set()
        tries = 0
        while len(values) < count:
            index = len(values)
            item_path = f"{path}/{index}"
            schema = prefix[index] if index < len(prefix) else items
            try:
                with self.salted(item_path, tries):
                    value = self.generate(schema, item_path, item_name, depth + 1)
            except OutOfBudget:
                raise
            except GenerationError:
                if index < minimum:
                    raise
                break  # an item no value fits: stop at the items made so far, minItems allows it
            if unique:
                key = equality_key(value)
                if key in seen:
                    tries += 1
                    if tries > 8 + 4 * count:
                        if len(values) >= minimum:
                            break
                        raise GenerationError(f"at {path or '/'}: could not find {minimum} unique items")
                    continue
                seen.add(key)
            values.append(value)
        if "contains" in node:
            self.ensure_contains(node, values, path, item_name, depth, maximum)
        return values

    def ensure_contains(
        self,
        node: dict[str, Any],
        values: list[Any],
        path: str,
        item_name: str | None,
        depth: int,
        maximum: Any,
    ) -> None:
        plan = self.plan
        contains = node["contains"]
        wanted = int(node.get("minContains", 1))
        have = sum(1 for value in values if plan.accepts(contains, value))
        if have >= wanted:
            return
        target = plan.derived(
            (id(node), "contains"),
            lambda: plan.merge(plan.resolve(node.get("items", True)), plan.resolve(contains)),
        )
        if target is False:
            raise GenerationError(f"at {path or '/'}: `contains` contradicts `items`", retryable=False)
        index = len(values) - 1
        while have < wanted:
            if maximum is None or len(values) < int(maximum):
                index = len(values)
                values.append(None)
            elif index < 0:
                break
            item_path = f"{path}/{index}"
            values[index] = self.generate(target, item_path, item_name, depth + 1)
            have += 1
            index -= 1

    def object_value(self, node: dict[str, Any], path: str, name: str | None, depth: int) -> dict[str, Any]:
        plan = self.plan
        shape = plan.node_fact(node, "object", lambda: ObjectShape(node))
        properties, required, required_set = shape.properties, shape.required, shape.required_set
        patterns, additional = shape.patterns, shape.additional
        chance = 1.0 if path == self.fill_path else 0.7 if depth < 3 else 0.35 if depth < MAX_DEPTH else 0.0
        result: dict[str, Any] = {}

        def put(key: str, schema: Any, member: tuple[str, list[Any]] | None = None) -> None:
            if not path and key in self.elided:  # the root's property the caller replaces
                result[key] = ELIDED
                return
            token, matching = member or (escape_token(key), _matching(patterns, key))
            if matching:
                schema = plan.derived(
                    (id(node), "key", key),
                    lambda: merge_all(plan, [schema, *matching]),
                )
            child = f"{path}/{token}"
            result[key] = self.generate(schema, child, member_name(name, key, shape.person), depth + 1)

        for key, token, schema, matching in shape.members:
            wanted = (
                chance > 0
                and self.chance(f"{path}/{token}", PRESENT_SLOT) < chance
                and plan.resolve(schema) is not False
            )
            if key in required_set:
                put(key, schema, (token, matching))
            elif wanted:
                try:
                    put(key, schema, (token, matching))
                except OutOfBudget:
                    raise
                except GenerationError:
                    pass  # an optional property no value fits is left out
        for key in required:
            if key not in result:
                put(key, self.extra_schema(node, key, path))
        if depth < MAX_DEPTH:
            self.add_extras(node, result, path, depth, additional, patterns, properties)
        self.fit_property_count(node, result, path, depth, properties, required_set, put)
        dependent = node.get("dependentRequired") or {}
        for key in list(result):
            for needed in dependent.get(key, ()):
                if needed not in result:
                    put(needed, properties.get(needed, self.extra_schema(node, needed, path)))
        return result

    def extra_schema(self, node: dict[str, Any], key: str, path: str) -> Any:
        """The schema for a key not in ``properties``: a matching pattern, or additionalProperties."""
        if any(search_pattern(pattern, key) for pattern in node.get("patternProperties") or {}):
            return True  # put() merges the matching patternProperties in
        additional = node.get("additionalProperties", True)
        if additional is False:
            raise GenerationError(
                f"at {path or '/'}: property {key!r} is required but additionalProperties is false",
                retryable=False,
            )
        return additional

    def add_extras(
        self,
        node: dict[str, Any],
        result: dict[str, Any],
        path: str,
        depth: int,
        additional: Any,
        patterns: dict[str, Any],
        properties: dict[str, Any],
    ) -> None:
        maximum = node.get("maxProperties")
        room = (int(maximum) - len(result)) if maximum is not None else 99
        if isinstance(additional, dict) and additional and room > 0:
            if properties or patterns:
                count = 1 if self.unit(path, "extra") < 0.3 else 0
            else:
                count = 1 + self.below(path, "extra", 2)
            for index in range(min(count, room)):
                self.add_extra(node, result, path, depth, index, additional)
            room = (int(maximum) - len(result)) if maximum is not None else 99
        if patterns and not properties and room > 0:
            for index, pattern in enumerate(patterns):
                if index < room and self.unit(path, f"pattern{index}") < 0.5:
                    self.add_pattern_property(node, result, path, depth, pattern, index)

    def add_pattern_property(
        self, node: dict[str, Any], result: dict[str, Any], path: str, depth: int, pattern: str, index: int
    ) -> bool:
        """Add a key that ``pattern`` matches, with a value for every patternProperty it matches."""
        patterns = node["patternProperties"]
        for attempt in range(4):
            try:
                key = string_for_pattern(pattern, self.tagged_rng(path, f"pattern-key{index}.{attempt}"), 6)
            except PatternUnsupported:
                return False
            if (
                key
                and key not in result
                and key not in (node.get("properties") or {})
                and search_pattern(pattern, key)
            ):
                matching = [patterns[p] for p in patterns if search_pattern(p, key)]
                merged = self.plan.derived((id(node), "key", key), partial(merge_all, self.plan, matching))
                result[key] = self.generate(merged, f"{path}/{escape_token(key)}", key, depth + 1)
                return True
        return False

    def add_extra(
        self, node: dict[str, Any], result: dict[str, Any], path: str, depth: int, index: int, schema: Any
    ) -> bool:
        key = self.extra_key(node, result, path, index)
        if key is None:
            return False
        result[key] = self.generate(schema, f"{path}/{escape_token(key)}", key, depth + 1)
        return True

    def extra_key(self, node: dict[str, Any], result: dict[str, Any], path: str, index: int) -> str | None:
        """A fresh property name that no declared property or pattern claims."""
        properties = node.get("properties") or {}
        patterns = node.get("patternProperties") or {}
        names = node.get("propertyNames")
        for attempt in range(8):
            tag = f"key{index}.{attempt}"
            if names is not None and names is not True:
                try:
                    with self.salted(f"{path}/~key{index}", attempt):
                        key = self.generate(names, f"{path}/~key{index}", None, MAX_DEPTH)
                except OutOfBudget:
                    raise
                except GenerationError:
                    return None
                if not isinstance(key, str):
                    return None
            else:
                rng = self.tagged_rng(path, tag)
                key = words(rng, 1) + (str(rng.randint(2, 99)) if attempt else "")
            if (
                key not in result
                and key not in properties
                and not any(search_pattern(p, key) for p in patterns)
            ):
                return key
        return None

    def fit_property_count(
        self,
        node: dict[str, Any],
        result: dict[str, Any],
        path: str,
        depth: int,
        properties: dict[str, Any],
        required: set[str],
        put: Any,
    ) -> None:
        minimum = int(node.get("minProperties", 0))
        maximum = node.get("maxProperties")
        for key, schema in properties.items():
            if len(result) >= minimum:
                break
            if key not in result and self.plan.resolve(schema) is not False:
                put(key, schema)
        additional = node.get("additionalProperties", True)
        patterns = list(node.get("patternProperties") or {})
        index = 10
        while len(result) < minimum:
            if patterns:
                added = self.add_pattern_property(
                    node, result, path, depth, patterns[index % len(patterns)], index
                )
            else:
                added = additional is not False and self.add_extra(
                    node, result, path, depth, index, additional
                )
            if not added:
                break
            index += 1
        if maximum is not None:
            for key in reversed(list(result)):
                if len(result) <= int(maximum):
                    break
                if key not in required:
                    del result[key]

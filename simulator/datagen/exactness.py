"""Which sub-schemas the walk generates *exactly*: never an error, never an invalid value.

A caller that will replace a top-level property of a generated object anyway (a list wrapper's
array of records, replaced by the stored records) may ask :meth:`CompiledSchema.generate
<simulator.datagen.generate.CompiledSchema.generate>` to leave that property out of the walk.
That is safe only if leaving it out changes nothing else: the property's own walk must raise
nothing and give a value the validator accepts (so the same attempt succeeds), and the
composition steps it takes from the attempt's budget must not make another part run out (so
each other property's value stays what the full walk gives). :func:`exact_cost` and
:func:`composition_free` say so, conservatively, from the keywords alone: a node with a keyword
they do not know (``pattern``, ``oneOf``, ``uniqueItems``, ``multipleOf``...) is not exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import jsonschema_rs

from simulator.spec.jsonschema.keywords import EXPANDABLE

from .containers import ELIDED
from .keyword_sets import ANNOTATIONS
from .merge import RESIDUAL
from .numbers import bounds, multiples
from .plan import GenerationError, Schema, SchemaPlan
from .walk import BUDGET

_NODE_KEYS = ANNOTATIONS | {
    "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "enum", "const", "format", "minLength", "maxLength", "minimum", "maximum", "anyOf",
}
# the formats the validator checks (jsonschema_rs, validate_formats=True; it ignores the rest)
_CHECKED_FORMATS = frozenset({
    "date", "date-time", "time", "duration", "email", "idn-email", "hostname", "idn-hostname",
    "ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uri-template", "uuid",
    "json-pointer", "relative-json-pointer", "regex",
})
SAFE_FORMATS = frozenset({
    "date", "date-time", "time", "duration", "email", "idn-email", "hostname", "idn-hostname",
    "ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid", "json-pointer",
    "relative-json-pointer", "regex",
})
"""Checked formats whose maker (``values.FORMAT_MAKERS``) always gives a valid string of at least
three characters, so that the plain-text fallback (which no checked format accepts) is never
reached under ``minLength`` <= 3 and no ``maxLength`` (a test checks each maker's strings)."""
_MAX_NESTING = 32  # well inside the walk's hard depth limit
_COMPOSITION = ("oneOf", "anyOf", "not", "if", RESIDUAL, "dependentSchemas")
_VALUE_KEYS = ("enum", "const", "example", "examples", "default")
_UNKNOWN = object()
_PLAIN_ROOT_KEYS = ANNOTATIONS | {"type", "properties", "required", "additionalProperties"}


class RootElision:
    """For one compiled schema: which root properties the walk may skip, and how to check a
    value that has them :data:`~simulator.datagen.containers.ELIDED`."""

    def __init__(self, plan: SchemaPlan, schema: Schema) -> None:
        self._plan = plan
        self._schema = schema
        self._costs: dict[int, int | None] = {}
        self._free: dict[int, bool] = {}
        self._elisions: dict[tuple[str, ...], tuple[str, ...]] = {}
        # skipped properties -> the validator of the rest (checked() found them skippable)
        self._validators: dict[tuple[str, ...], Any] = {}

    def elidable(self, wanted: Iterable[str]) -> tuple[str, ...]:
        """The root properties among ``wanted`` that the walk can leave out, changing nothing
        else: the root is a plain object (properties, required, a boolean additionalProperties,
        one type), each property's walk is exact, and the composition steps they skip cannot
        matter: none, or the rest of the root takes none."""
        key = tuple(sorted(set(wanted)))
        found = self._elisions.get(key)
        if found is None:
            found = self._elisions[key] = self._find(key) if key else ()
        return found

    def _find(self, wanted: tuple[str, ...]) -> tuple[str, ...]:
        properties = self._root_properties()
        if properties is None:
            return ()
        plan = self._plan
        costs = {key: exact_cost(plan, properties[key], self._costs) for key in wanted if key in properties}
        free = [key for key, cost in costs.items() if cost == 0]
        spending = [key for key, cost in costs.items() if cost]  # None (not exact) is left out
        if spending and (
            sum(costs[key] or 0 for key in spending) > BUDGET
            or not all(composition_free(plan, sub, self._free) for key, sub in properties.items()
                       if key not in spending)
        ):
            spending = []
        return tuple(sorted(free + spending))

    def _root_properties(self) -> dict[str, Any] | None:
        """The root's properties when the root is a plain object, else None."""
        plan = self._plan
        try:
            root = plan.resolve(self._schema)
        except GenerationError:
            return None
        if (
            not isinstance(root, dict)
            or not all(word in _PLAIN_ROOT_KEYS or word.startswith("x-") for word in root)
            or plan.types(root) != ("object",)
            or not isinstance(root.get("properties"), dict)
            or not isinstance(root.get("additionalProperties", True), bool)
        ):
            return None
        properties: dict[str, Any] = root["properties"]
        return properties

    def is_valid(self, value: Any) -> bool:
        """Whether ``value`` validates against the schema, its :data:`ELIDED` members standing
        for the valid values the walk gives them. Where the root allows (see
        :meth:`_members_valid`), by the root's own validator, all but the elided names' absence:
        a validator of "the root without these properties" would be compiled for every new set
        of skipped names (1.5 a sample in an offline generation, 3.6% of its time), and one per
        member would compile what each member references again (on stripe, a field that may
        expand to a customer reaches most of the spec: 1,194 compiles, a fifth of a certify)."""
        if not (isinstance(value, dict) and any(item is ELIDED for item in value.values())):
            return bool(self._plan.validator.is_valid(value))
        verdict = self._members_valid(value)
        if verdict is None:
            validator, rest = self.checked(value)
            return bool(validator.is_valid(rest))
        return verdict

    def _members_valid(self, value: dict[str, Any]) -> bool | None:
        """The root's verdict on ``value``, or None where the root's keywords do not allow this
        way. A plain object root (as :meth:`elidable` requires) accepts an object with elided
        members exactly when its validator finds nothing wrong with the rest but required names
        that were elided: the root's own validator (compiled once, whatever is skipped) judges
        every member there is, in the root's dialect and scope."""
        properties = self._root_properties()
        if properties is None:
            return None
        skipped = set()
        rest = {}
        for key, item in value.items():
            if item is ELIDED:
                if key not in properties or exact_cost(self._plan, properties[key], self._costs) is None:
                    return None  # not a property the walk could have skipped: checked() says why
                skipped.add(key)
            else:
                rest[key] = item
        return all(isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Required) and not error.instance_path
                   and error.kind.property in skipped for error in self._plan.validator.iter_errors(rest))

    def checked(self, value: Any) -> tuple[Any, Any]:
        """(validator, value to check) for ``value``: the root's validator and the value, or,
        when it has elided members (each exact, so valid where the walk gives it), a validator
        of the root without those properties and the value without them."""
        plan = self._plan
        if not (isinstance(value, dict) and any(item is ELIDED for item in value.values())):
            return plan.validator, value
        skipped = tuple(sorted(key for key, item in value.items() if item is ELIDED))
        validator = self._validators.get(skipped, _UNKNOWN)
        if validator is _UNKNOWN:  # a pure function of the plan and the skipped names
            validator = self._validators[skipped] = self._rest_validator(skipped)
        return validator, {k: v for k, v in value.items() if v is not ELIDED}

    def _rest_validator(self, skipped: tuple[str, ...]) -> Any:
        """The validator of the root without the properties ``skipped``, which must be ones the
        walk can skip (else ValueError)."""
        plan = self._plan
        properties = self._root_properties()
        if properties is None or any(key not in properties or exact_cost(plan, properties[key], self._costs) is None
                                     for key in skipped):
            raise ValueError(f"{', '.join(skipped)}: not properties the walk could have skipped")

        def without() -> Schema:
            root = plan.resolve(self._schema)
            assert isinstance(root, dict)  # a plain object, as _root_properties found
            rest = {**root, "properties": {k: v for k, v in root["properties"].items() if k not in skipped}}
            if "required" in root:
                rest["required"] = [k for k in root["required"] if k not in skipped]
            return rest

        return plan.validator_for(plan.derived(("elide", *skipped), without))


def exact_cost(plan: SchemaPlan, schema: Schema, memo: dict[int, int | None]) -> int | None:
    """None when the walk of ``schema`` (a node of ``plan``) might fail or give an invalid value;
    else the most composition steps (``anyOf`` nodes entered) it can take from the attempt's
    budget. ``memo`` (id -> answer) is the caller's; the plan pins every node it answers for,
    so ids stay unique. A ``$ref`` cycle is not exact (the walk's depth limits decide its value)."""
    return _cost(plan, schema, memo, set(), 0)


def composition_free(plan: SchemaPlan, schema: Schema, memo: dict[int, bool]) -> bool:
    """Whether no value of ``schema`` walks through a keyword that takes composition steps, so
    that its walk neither spends nor runs out of the attempt's budget."""
    if not isinstance(schema, dict):
        return True
    key = id(schema)
    if key in memo:
        return memo[key]
    memo[plan.pin(schema)] = True  # a cycle back here adds no keyword of its own
    try:
        node = plan.resolve(schema)
    except GenerationError:
        node = False
    found = node is True or (
        isinstance(node, dict)
        and not any(word in node for word in _COMPOSITION)
        and all(composition_free(plan, sub, memo) for sub in _sub_schemas(node))
    )
    memo[key] = found
    return found


def _sub_schemas(node: dict[str, Any]) -> list[Any]:
    found: list[Any] = []
    for word, value in node.items():
        if word in _VALUE_KEYS:
            continue
        if isinstance(value, dict):
            found.append(value)
            found.extend(v for v in value.values() if isinstance(v, dict))  # properties and the like
        elif isinstance(value, list):
            found.extend(v for v in value if isinstance(v, dict))
    return found


def _cost(plan: SchemaPlan, schema: Schema, memo: dict[int, int | None], active: set[int], depth: int) -> int | None:
    if schema is True:
        return 0
    if not isinstance(schema, dict) or depth > _MAX_NESTING:
        return None
    key = id(schema)
    if key in memo:
        return memo[key]
    if key in active:
        return None
    active.add(key)
    try:
        try:
            node = plan.resolve(schema)
        except GenerationError:
            node = False
        found = 0 if node is True else _node_cost(plan, node, memo, active, depth) if isinstance(node, dict) else None
    finally:
        active.discard(key)
    memo[plan.pin(schema)] = found
    return found


def _node_cost(plan: SchemaPlan, node: dict[str, Any], memo: dict[int, int | None], active: set[int],
               depth: int) -> int | None:
    if any(key not in _NODE_KEYS and not key.startswith("x-") for key in node):
        return None
    if "const" in node or "enum" in node:
        return 0 if plan.enum_members(node) else None  # the walk returns a member, each one valid
    if "anyOf" in node:
        return _any_of_cost(plan, node, memo, active, depth)
    declared = plan.types(node)
    kinds = ("string",) if declared is None else declared  # no type keyword: the walk makes a string
    costs = [_kind_cost(plan, kind, node, memo, active, depth) for kind in kinds]
    return _max(costs) if costs else None


def _any_of_cost(plan: SchemaPlan, node: dict[str, Any], memo: dict[int, int | None], active: set[int],
                 depth: int) -> int | None:
    """The walk takes the first branch (merged with the rest of the node) in a seeded order: with
    every branch exact, that one gives a value, valid for the branch and so for the node."""
    branches = node["anyOf"]
    if not isinstance(branches, list):
        return None
    costs: list[int | None] = []
    for index in _branch_indices(plan, node, branches):
        merged = plan.merged_branch(node, "anyOf", index)  # the node the walk takes for the branch
        if merged is False:
            continue
        if isinstance(merged, dict) and "anyOf" in merged and merged.get(EXPANDABLE) is not True:
            return None  # nested composition: kept to the simple case (an expandable field's is fixed)
        cost = _cost(plan, merged, memo, active, depth + 1)
        if node.get(EXPANDABLE) is True:  # branches in a fixed order: the first, if exact, is the only one tried
            return None if cost is None else 1 + cost
        costs.append(cost)
    found = _max(costs) if costs else None
    return None if found is None else 1 + found


def _branch_indices(plan: SchemaPlan, node: dict[str, Any], branches: list[Any]) -> list[int]:
    """The branches in the order the walk may take them: an expandable field's in its fixed
    order (:meth:`SchemaPlan.unexpanded_first`), any other's in any order."""
    return plan.unexpanded_first(branches) if node.get(EXPANDABLE) is True else list(range(len(branches)))


def _kind_cost(plan: SchemaPlan, kind: str, node: dict[str, Any], memo: dict[int, int | None], active: set[int],
               depth: int) -> int | None:
    if kind in ("null", "boolean"):
        return 0
    if kind == "string":
        return 0 if _string_exact(node) else None
    if kind in ("integer", "number"):
        return 0 if _number_exact(node, kind == "integer") else None
    if kind == "array":
        low, high = node.get("minItems", 0), node.get("maxItems")
        if not _count(low) or (high is not None and (not _count(high) or high < low)):
            return None
        items = _cost(plan, node.get("items", True), memo, active, depth + 1)
        count = max(low, 3) if high is None else min(max(low, 3), high)  # containers.array_value
        return None if items is None else count * items
    if kind == "object":
        return _object_cost(plan, node, memo, active, depth)
    return None


def _object_cost(plan: SchemaPlan, node: dict[str, Any], memo: dict[int, int | None], active: set[int],
                 depth: int) -> int | None:
    properties = node.get("properties", {})
    required = node.get("required", [])
    additional = node.get("additionalProperties", True)
    if not isinstance(properties, dict) or not isinstance(required, list) or not isinstance(additional, bool | dict):
        return None
    if any(name not in properties for name in required):
        return None  # a required key outside properties comes from additionalProperties
    costs = [_cost(plan, sub, memo, active, depth + 1) for sub in properties.values()]
    if isinstance(additional, dict) and additional:
        extra = _cost(plan, additional, memo, active, depth + 1)
        costs.append(None if extra is None else 2 * extra)  # add_extras adds at most two keys
    return None if None in costs else sum(c for c in costs if c is not None)


def _max(costs: list[int | None]) -> int | None:
    return None if None in costs else max(c for c in costs if c is not None)


def _string_exact(node: dict[str, Any]) -> bool:
    low, high = node.get("minLength", 0), node.get("maxLength")
    if not _count(low) or (high is not None and (not _count(high) or high < low)):
        return False
    form = node.get("format")
    if form is not None and not isinstance(form, str):
        return False
    if form is None or form not in _CHECKED_FORMATS:
        return True  # plain text meets the length limits; an unchecked format constrains nothing
    return form in SAFE_FORMATS and low <= 3 and high is None


def _number_exact(node: dict[str, Any], integer: bool) -> bool:
    """Inclusive bounds only, no multipleOf: the value is a whole (or 1/100) step inside them."""
    if "exclusiveMinimum" in node or "exclusiveMaximum" in node or "multipleOf" in node:
        return False
    for key in ("minimum", "maximum"):
        bound = node.get(key)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            return False
    low, low_open, high, high_open = bounds(node)
    # the first unit number_in_range tries: one for integers, a hundredth for numbers
    k_low, k_high = multiples(Fraction(1) if integer else Fraction(1, 100), low, low_open, high, high_open)
    return k_low is None or k_high is None or k_low <= k_high


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

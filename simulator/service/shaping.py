"""Make a value that validates against a response schema while keeping as much as the schema
allows of what we want to say (a stored record, echoed inputs, a problem report).

``Shaper.conform`` is the one place where simulator output meets the spec's response
schemas: every body the simulator sends has been through it and validates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson

from simulator.datagen.generate import CompiledSchema
from simulator.datagen.generate import compile_schema as compile_generator
from simulator.datagen.text_memo import TextMemo
from simulator.spec.model import JSONSchema
from simulator.spec.navigation import (
    array_items,
    deref,
    object_properties,
    primary_type,
    required_properties,
)
from simulator.state.memo import BoundedMemo

from .bundling import Bundler
from .validation import compile_schema
from .writes import is_secret_name

_MAX_DEPTH = 6
T = TypeVar("T")
_UNFIT = object()  # a hinted value that does not fit its property's schema
_PLANS = 4096  # schema nodes per shaper whose compiled forms are kept (each holds its node alive)
# the most properties an object may have for an echo's regeneration to skip its kept scalars too:
# each set of skipped members compiles a validator of the rest, and a generated object's members
# are any subset of its optional properties (2 ** 8 sets at most)
_ECHO_SKIP_MAX = 8
# an object schema made of these alone is valid for an object when each member is valid for its
# property's schema and the rest (required names, other members) is: members can be left out
_PLAIN_OBJECT = frozenset({"type", "properties", "required", "additionalProperties", "title", "description"})
# an array schema made of these alone is valid for an array of valid items whose length fits
_PLAIN_ARRAY = frozenset({"type", "items", "minItems", "maxItems", "title", "description"})


class Shaper:
    def __init__(self, epoch: dt.datetime) -> None:
        self.epoch = epoch
        # (id(root), id(schema)) -> (root, schema, compiled): holding the dicts keeps their ids
        # unique while the entry lives; spec schemas are never mutated. Bounded, because a caller
        # may pass a fresh dict ({"type": "object"} for a resource without a schema) each time.
        self._validators: dict[tuple[int, int], tuple[JSONSchema, JSONSchema, Any]] = BoundedMemo(_PLANS)
        self._generators: dict[tuple[int, int], tuple[JSONSchema, JSONSchema, CompiledSchema]] = BoundedMemo(_PLANS)
        # (id(root), id(schema)) -> (root, schema, (has writeOnly members, has secret-named members))
        self._write_only: dict[tuple[int, int], tuple[JSONSchema, JSONSchema, tuple[bool, bool]]] = BoundedMemo(
            _PLANS)
        # (id(root), id(schema), members) -> (root, schema, validator of the other members)
        self._partial: dict[tuple[int, int, tuple[str, ...]], tuple[JSONSchema, JSONSchema, Any]] = BoundedMemo(
            _PLANS)
        # a node compiles with the $defs it reaches, not its root's hundreds (bundling.py), and
        # once per distinct text: a spec repeats its nodes (4 in 5 compiles on stripe were repeats)
        self._bundler = Bundler()
        self._compile_validator: TextMemo[Any] = TextMemo(compile_schema, _PLANS)
        # (id(root), id(schema), what) -> (root, schema, what(root, schema)): the navigation
        # helpers a conform asks of each node it meets (deref, primary_type...), pure functions of it
        self._facts: dict[tuple[int, int, Callable[..., Any]], tuple[JSONSchema, JSONSchema, Any]] = BoundedMemo(
            _PLANS * 4)
        # id(a $defs entry) -> (the entry, has_hidden's flags for its text): roots share entries
        self._def_hidden: dict[int, tuple[Any, tuple[bool, bool]]] = BoundedMemo(_PLANS * 4)

    def validator(self, root: JSONSchema, schema: JSONSchema) -> Any:
        return self._per_node(self._validators, root, schema, self._compile_validator)

    def is_valid(self, root: JSONSchema, schema: JSONSchema, value: Any) -> bool:
        return bool(self.validator(root, schema).is_valid(value))

    def generator(self, root: JSONSchema, schema: JSONSchema) -> CompiledSchema:
        """``schema`` (inside ``root``) compiled for generation, once per schema node."""
        return self._per_node(self._generators, root, schema, compile_generator)

    def _per_node(self, cache: dict[tuple[int, int], tuple[JSONSchema, JSONSchema, T]], root: JSONSchema,
                  schema: JSONSchema, compile_node: Callable[[JSONSchema], T]) -> T:
        """``compile_node`` of ``schema`` made self-contained, once per (root, schema) node."""
        key = (id(root), id(schema))
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = (root, schema, compile_node(self._bundler.self_contained(root, schema)))
        return hit[2]

    def _of(self, what: Callable[[JSONSchema, Any], T], root: JSONSchema, schema: JSONSchema) -> T:
        """``what(root, schema)`` (a helper of :mod:`simulator.spec.navigation`), once per node;
        the result is shared: not to be changed."""
        key = (id(root), id(schema), what)
        hit = self._facts.get(key)
        if hit is None:
            hit = self._facts[key] = (root, schema, what(root, schema))
        return hit[2]  # type: ignore[no-any-return]

    def generate(self, root: JSONSchema, schema: JSONSchema, seed: str, name: str | None = None, *,
                 elide: Iterable[str] = ()) -> Any:
        """A full representation (every top-level property) for ``seed``; with ``elide``, the
        properties the generator can skip come back ELIDED (``CompiledSchema.generate``)."""
        return self.generator(root, schema).generate(seed, name=name, epoch=self.epoch, complete=True, elide=elide)

    def generated_valid(self, root: JSONSchema, schema: JSONSchema, value: Any) -> bool:
        """:meth:`is_valid` for a value from :meth:`generate` that may have ELIDED members (they
        count as the valid values the generator gives them; ``CompiledSchema.is_valid``)."""
        return self.generator(root, schema).is_valid(value)

    def conform(
        self,
        root: JSONSchema,
        schema: JSONSchema,
        hint: Any,
        seed: str,
        *,
        inputs: dict[str, Any] | None = None,
        name: str | None = None,
        keep_extra: bool = False,
        hide_secrets: bool = False,
    ) -> Any:
        """A value valid for ``schema`` (inside ``root``): ``hint`` itself when it validates,
        otherwise generated data with every part of ``hint`` (and every input whose name is a
        property name) that fits kept. ``writeOnly`` members (a password) are never part of it:
        the schemas are response schemas, and a response must not carry them. With
        ``hide_secrets`` (record responses), members named as secrets
        (:func:`~simulator.service.writes.is_secret_name`) are left out too, where the schema allows."""
        value = self._conform(root, schema, hint, seed, inputs=inputs, name=name, keep_extra=keep_extra)[0]
        if self.has_hidden(root, schema, hide_secrets):
            value = self.without_hidden(root, schema, value, hide_secrets)
        return value

    def has_hidden(self, root: JSONSchema, schema: JSONSchema, secrets: bool) -> bool:
        """Whether ``schema`` has a ``writeOnly`` member (or, with ``secrets``, a secret one)."""
        key = (id(root), id(schema))
        hit = self._write_only.get(key)
        if hit is None:
            # of the text of sub_schema(root, schema), a part at a time: the node's own members,
            # then each $defs entry (no match spans two members of an object's text)
            flags = self._hidden_flags(schema)
            if "$defs" in root and "$defs" not in schema:  # sub_schema's test, in its order
                flags = _either(flags, self._defs_flags(root["$defs"]))
            hit = self._write_only[key] = (root, schema, flags)
        return hit[2][0] or (secrets and hit[2][1])

    def _hidden_flags(self, value: Any) -> tuple[bool, bool]:
        """(a ``writeOnly: true`` in ``value``'s JSON text, a secret-named property declared in it)."""
        if isinstance(value, dict) and "$defs" in value:
            rest = {key: member for key, member in value.items() if key != "$defs"}
            return _either(_text_flags(rest), self._defs_flags(value["$defs"]))
        return _text_flags(value)

    def _defs_flags(self, defs: Any) -> tuple[bool, bool]:
        """:meth:`_hidden_flags` of a ``$defs`` object, one memoised entry at a time."""
        if not isinstance(defs, dict):
            return _text_flags(defs)
        # the object's own text: a definition named writeOnly that is `true`; _property_names
        # reads a definition named properties as a properties object
        names = defs.get("properties")
        flags = (defs.get("writeOnly") is True,
                 isinstance(names, dict) and any(is_secret_name(name) for name in names))
        for definition in defs.values():
            hit = self._def_hidden.get(id(definition))
            if hit is None:
                hit = self._def_hidden[id(definition)] = (definition, _text_flags(definition))
            flags = _either(flags, hit[1])
        return flags

    def without_hidden(self, root: JSONSchema, schema: JSONSchema, value: Any, secrets: bool, depth: int = 0) -> Any:
        """``value`` with every property whose schema is ``writeOnly`` removed, at any depth, and
        with ``secrets`` every secret-named one its object does not require."""
        if depth > _MAX_DEPTH * 2:
            return value
        if isinstance(value, list):
            items = self._of(array_items, root, schema)
            return [self.without_hidden(root, items, v, secrets, depth + 1) for v in value] if items else value
        if not isinstance(value, dict):
            return value
        resolved = self._of(deref, root, schema)
        branches = resolved.get("oneOf") or resolved.get("anyOf")
        if isinstance(branches, list) and "properties" not in resolved:
            # a polymorphic member (stripe's sources: card, bank account, source...): the branch
            # it is, whose own members and ``required`` say what may go (a source requires its
            # client_secret), not the first branch's
            for branch in branches:
                if isinstance(branch, dict) and self.is_valid(root, branch, value):
                    return self.without_hidden(root, branch, value, secrets, depth + 1)
        props = self._of(object_properties, root, schema)
        required = self._of(required_properties, root, schema) if secrets else ()
        out = {}
        for key, member in value.items():
            raw = props.get(key, {})
            prop = deref(root, raw)
            if raw.get("writeOnly") is True or prop.get("writeOnly") is True:
                continue
            if secrets and key not in required and is_secret_name(key):
                continue
            out[key] = self.without_hidden(root, prop, member, secrets, depth + 1) if prop else member
        return out

    def _conform(
        self,
        root: JSONSchema,
        schema: JSONSchema,
        hint: Any,
        seed: str,
        *,
        inputs: dict[str, Any] | None = None,
        name: str | None = None,
        keep_extra: bool = False,
        depth: int = 0,
        echo: bool = False,
    ) -> tuple[Any, bool]:
        """The conformed value, and whether it is known to validate against ``schema`` (then
        callers need not check it again: a list body's records are checked once, not four times).
        ``echo``: ``hint`` is a value generated for ``schema`` that is conformed again only to
        echo ``inputs`` into it (:meth:`_conform_object`)."""
        resolved = self._of(deref, root, schema)
        if (hint is not None and (not inputs or not isinstance(hint, dict)) and not _lacks_required(resolved, hint)
                and self.is_valid(root, schema, hint)):
            return hint, True
        ptype = self._of(_primary_type, root, schema)
        if depth > _MAX_DEPTH or ptype not in ("object", "array"):
            return self.generate(root, schema, seed, name), False
        if ptype == "array":
            return self._conform_array(root, schema, resolved, hint, seed, name, depth)
        return self._conform_object(root, schema, resolved, hint, seed, inputs, name, keep_extra, depth, echo)

    def _conform_array(self, root: JSONSchema, schema: JSONSchema, resolved: JSONSchema, hint: Any, seed: str,
                       name: str | None, depth: int) -> tuple[Any, bool]:
        """Each hinted item conformed in turn, within ``maxItems``, topped up to ``minItems``."""
        # the generated array is needed only to top up or to replace an invalid result: not
        # generated otherwise (a list response's hinted records usually make it valid as it is)
        if not isinstance(hint, list):
            return self.generate(root, schema, seed, name), False
        items = self._of(array_items, root, schema) or {}
        limit = resolved.get("maxItems")
        conformed = [
            self._conform(root, items, h, f"{seed}/{i}", depth=depth + 1)
            for i, h in enumerate(hint[:limit] if isinstance(limit, int) else hint)
        ]
        values = [value for value, _ in conformed]
        minimum = resolved.get("minItems", 0)
        if len(values) < minimum:
            base = self.generate(root, schema, seed, name)
            if isinstance(base, list):
                values += base[len(values) : minimum]
        # items each found valid (a list body's records) are not checked again as the array
        # where its schema's verdict is theirs and its length's
        known = len(values) == len(conformed) and all(valid for _, valid in conformed)
        if (known and _plain_array_fits(root, schema, resolved, len(values))) or self.is_valid(root, schema, values):
            return values, True
        return self.generate(root, schema, seed, name), False

    def _conform_object(self, root: JSONSchema, schema: JSONSchema, resolved: JSONSchema, hint: Any, seed: str,
                        inputs: dict[str, Any] | None, name: str | None, keep_extra: bool,
                        depth: int, echo: bool = False) -> tuple[Any, bool]:
        """Generated properties, each replaced by the hinted (or input) value where that fits."""
        props = self._of(object_properties, root, schema)
        hint_dict = hint if isinstance(hint, dict) else {}
        kept = self._fitting_hints(root, props, hint_dict, seed, depth)
        # a kept list or object (a list wrapper's records) replaces a generated value that costs
        # as much as the records: the generator skips it where that changes nothing else
        elide = [prop for prop, value in kept.items() if isinstance(value, (dict, list))] if kept else []
        # an echo's hint (a generated object) keeps every member it has: none of them need be
        # generated again, scalars included (few sets of them: see _ECHO_SKIP_MAX)
        skip = list(kept) if kept and echo and len(props) <= _ECHO_SKIP_MAX else elide
        base = self.generate(root, schema, seed, name, elide=skip)
        if not isinstance(base, dict):
            return base, False
        result = dict(base)
        for prop, prop_schema in props.items():
            if prop in hint_dict:
                value = kept.get(prop, _UNFIT) if kept is not None else \
                    self._fitting_hint(root, prop, prop_schema, hint_dict[prop], seed, depth)
                if value is not _UNFIT:
                    result[prop] = value
            elif inputs and prop in inputs and self.is_valid(root, prop_schema, inputs[prop]):
                result[prop] = inputs[prop]
            elif inputs and isinstance(result.get(prop), dict):
                result[prop] = self._conform(root, prop_schema, result[prop], f"{seed}/{prop}", inputs=inputs,
                                             name=prop, depth=depth + 1, echo=True)[0]
        if keep_extra and resolved.get("additionalProperties", True) is not False:
            for key, value in hint_dict.items():
                if key not in props:
                    result.setdefault(key, value)
        if self._valid_besides(root, schema, resolved, result, elide):
            return result, True
        if skip:  # the fallback starts from the whole generated value
            base = self.generate(root, schema, seed, name)
        return self._echoed_scalars(root, schema, base, props, hint_dict), False

    def _valid_besides(self, root: JSONSchema, schema: JSONSchema, resolved: JSONSchema, value: dict[str, Any],
                       checked: list[str]) -> bool:
        """:meth:`is_valid` for an object whose members ``checked`` were each found valid for their
        property schemas (a list body's records): with a plain object schema, whose verdict is
        the members' verdicts together, those are not checked again."""
        if not checked or not _PLAIN_OBJECT.issuperset(resolved) or not _just_ref(root, schema, resolved):
            return self.is_valid(root, schema, value)
        key = (id(root), id(schema), tuple(checked))
        hit = self._partial.get(key)
        if hit is None:
            rest = {**resolved, "properties": {k: v for k, v in resolved.get("properties", {}).items()
                                               if k not in checked}}
            if isinstance(resolved.get("required"), list):
                rest["required"] = [k for k in resolved["required"] if k not in checked]
            hit = self._partial[key] = (root, schema, self._compile_validator(self._bundler.self_contained(root, rest)))
        return bool(hit[2].is_valid({k: v for k, v in value.items() if k not in checked}))

    def _fitting_hints(self, root: JSONSchema, props: dict[str, Any], hint: dict[str, Any], seed: str,
                       depth: int) -> dict[str, Any] | None:
        """The hinted members that fit their property schemas (conformed where they are lists or
        objects), worked out before the generated value they replace; None when one of them
        fails, so that the caller takes its steps in their first order and fails where it did."""
        try:
            fitting = ((prop, self._fitting_hint(root, prop, prop_schema, hint[prop], seed, depth))
                       for prop, prop_schema in props.items() if prop in hint)
            return {prop: value for prop, value in fitting if value is not _UNFIT}
        except Exception:  # raised again, in its first order, by the caller's own steps
            return None

    def _fitting_hint(self, root: JSONSchema, prop: str, prop_schema: JSONSchema, value: Any, seed: str,
                      depth: int) -> Any:
        """The hinted ``value`` of ``prop`` (conformed if a list or object) if it fits, else ``_UNFIT``."""
        if isinstance(value, (dict, list)):
            value, valid = self._conform(root, prop_schema, value, f"{seed}/{prop}", name=prop, depth=depth + 1)
            if valid:
                return value
        return value if self.is_valid(root, prop_schema, value) else _UNFIT

    def _echoed_scalars(self, root: JSONSchema, schema: JSONSchema, base: dict[str, Any], props: dict[str, Any],
                        hint: dict[str, Any]) -> dict[str, Any]:
        """For a combination the schema forbids (oneOf, dependencies...): ``base`` with only the
        hinted scalars that keep it valid, added one at a time in property order."""
        minimal = dict(base)
        for prop in props:
            candidate = hint.get(prop)
            if candidate is not None and not isinstance(candidate, (dict, list)):
                trial = {**minimal, prop: candidate}
                if self.is_valid(root, schema, trial):
                    minimal = trial
        return minimal

def _primary_type(root: JSONSchema, schema: JSONSchema) -> str | None:
    """``primary_type`` of the node ``schema`` leads to (it follows the node's $ref first)."""
    return primary_type(root, deref(root, schema))


def _plain_array_fits(root: JSONSchema, schema: JSONSchema, resolved: JSONSchema, count: int) -> bool:
    """Whether any array of ``count`` items, each valid for its items schema, is valid for
    ``schema``: a plain array schema (type, items, minItems, maxItems) that ``count`` fits."""
    if (resolved.get("type") != "array" or not _PLAIN_ARRAY.issuperset(resolved)
            or not isinstance(resolved.get("items", {}), dict) or not _just_ref(root, schema, resolved)):
        return False
    low, high = resolved.get("minItems", 0), resolved.get("maxItems")
    return _count(low) and low <= count and (high is None or (_count(high) and count <= high))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _just_ref(root: JSONSchema, schema: JSONSchema, resolved: JSONSchema) -> bool:
    """Whether validating against ``schema`` is validating against ``resolved``: it is that node,
    or a bare ``$ref`` to it (with the definitions of ``root``, when it is the root)."""
    return schema is resolved or set(schema) == {"$ref"} or (schema is root and set(schema) == {"$ref", "$defs"})


def _lacks_required(schema: JSONSchema, value: Any) -> bool:
    """Whether ``value`` is an object missing a property that ``schema`` (ref-free) requires at its
    top level: then it cannot validate, and checking its members (a list body's records) is waste."""
    required = schema.get("required")
    return isinstance(value, dict) and isinstance(required, list) and any(
        isinstance(name, str) and name not in value for name in required)


def _text_flags(value: Any) -> tuple[bool, bool]:
    """(a ``writeOnly: true`` in ``value``'s JSON text, a secret-named property declared in it)."""
    text = orjson.dumps(value)
    return b'"writeOnly":true' in text, any(is_secret_name(n) for n in _property_names(text))


def _either(a: tuple[bool, bool], b: tuple[bool, bool]) -> tuple[bool, bool]:
    return a[0] or b[0], a[1] or b[1]


def _property_names(schema_json: bytes) -> list[str]:
    """Every property name declared anywhere in a schema's JSON text."""
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                names.extend(props)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(orjson.loads(schema_json))
    return names

"""OpenAPI schema objects (Swagger 2.0, OAS 3.0, OAS 3.1) -> self-contained JSON Schema 2020-12.

One :class:`SchemaConverter` serves one spec load. ``convert`` turns a schema found in the spec
into a *root*; every ``$ref`` in it (and in what it reaches) becomes ``#/$defs/<name>``, and
:meth:`SchemaConverter.finish` names the targets and attaches to each root the ``$defs`` it
reaches transitively. Targets are converted once per direction and shared between roots, so
callers must treat the schemas as read-only.

The rules, the same for every dialect (lenient where a spec's intent is plain):

- ``nullable: true`` / ``x-nullable: true`` admit null (type array, ``None`` added to ``enum``,
  or ``anyOf [.., {type: null}]`` when the schema constrains through ``$ref``/compositions);
- boolean ``exclusiveMinimum``/``exclusiveMaximum`` become numeric bounds;
- ``example`` joins ``examples``; ``type: file`` becomes a binary string; ``int32``/``int64``
  formats add their bounds;
- ``discriminator``, ``xml``, ``externalDocs``, ``x-*``, inner ``$defs``/``$id``/``$anchor`` and
  every keyword JSON Schema 2020-12 does not know are dropped, save one: a response field that
  Stripe's ``x-expansionResources`` marks expandable (``anyOf`` [an id string, the objects it
  expands to]) keeps ``x-expandable: true`` (:data:`EXPANDABLE`), an annotation validators
  ignore, so the generator gives the id, as the API does unless a request asks to expand it;
  keyword values the 2020-12 meta-schema would reject (a non-list ``required``, a pattern that
  does not compile, ...) are dropped too, so each result compiles;
- request direction: ``readOnly`` properties leave ``required``; response: ``writeOnly`` ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from simulator.spec.model import JSONSchema
from simulator.spec.refs import Documents, Location, RefError

from .flags import Direction, flagged_properties
from .keywords import (
    EXPANDABLE,
    allow_null,
    as_count,
    as_number,
    dependent_required,
    exclusive_bounds,
    integer_bounds,
    type_names,
)
from .names import def_names

log = logging.getLogger(__name__)



_NO_EXAMPLE = object()


class SchemaConverter:
    """Converts the schemas of one spec; see the module docstring for the rules."""

    def __init__(self, documents: Documents) -> None:
        self._docs = documents
        # (target, direction) -> (converted body, targets it refers to) or the error converting it
        self._defs: dict[tuple[Location, Direction], tuple[Any, tuple[Location, ...]] | RefError] = {}
        self._exists: set[Location] = set()
        self._ref_sites: list[tuple[dict[str, Any], Location]] = []
        self._closures: dict[tuple[Location, Direction], tuple[Location, ...] | RefError] = {}
        self._roots: list[tuple[JSONSchema, Direction, tuple[Location, ...]]] = []
        self._patterns: dict[str, bool] = {}

    # -- public -------------------------------------------------------------------------------

    def convert(self, node: Any, doc: str, pointer: str, direction: Direction) -> JSONSchema:
        """The root schema for ``node`` (found at ``pointer`` of document ``doc``).

        Raises :class:`RefError` (located) when it, or anything it reaches, has a ``$ref`` that
        does not resolve. Its refs are named and its ``$defs`` attached by :meth:`finish`.
        """
        deps: dict[Location, None] = {}
        try:
            out = self._node(node, doc, direction, deps, frozenset())
        except RefError as exc:
            raise exc.locate(doc, pointer) from None
        closure = self._closure(deps, direction)
        if not isinstance(out, dict):
            out = {} if out else {"not": {}}
        self._roots.append((out, direction, closure))
        return out

    def convert_object(self, properties: list[tuple[str, Any, Location]], required: list[str],
                       direction: Direction) -> JSONSchema:
        """An object root whose properties come from nodes in different places (Swagger 2.0
        form parameters); errors point at the property's own node."""
        deps: dict[Location, None] = {}
        converted: dict[str, Any] = {}
        for name, node, at in properties:
            try:
                converted[name] = self._node(node, at.doc, direction, deps, frozenset())
            except RefError as exc:
                raise exc.locate(at.doc, at.pointer) from None
        out: JSONSchema = {"type": "object", "properties": converted}
        if required:
            out["required"] = required
        self._roots.append((out, direction, self._closure(deps, direction)))
        return out

    def finish(self) -> None:
        """Name every referenced target, point refs at ``#/$defs/<name>`` and give each root its
        ``$defs`` (sorted by name). Call once, after the last :meth:`convert`."""
        names = def_names(loc for _, loc in self._ref_sites)
        for site, loc in self._ref_sites:
            site["$ref"] = "#/$defs/" + names[loc]
        # roots that reach the same targets share one `$defs` (a set as key: order cannot leak)
        shared: dict[tuple[Direction, frozenset[Location]], dict[str, Any]] = {}
        by_tuple: dict[int, dict[str, Any]] = {}
        for root, direction, closure in self._roots:
            if not closure:
                continue
            defs = by_tuple.get(id(closure))
            if defs is None:
                key = (direction, frozenset(closure))
                defs = shared.get(key)
                if defs is None:
                    defs = shared[key] = dict(sorted((names[loc], self._body(loc, direction)) for loc in closure))
                by_tuple[id(closure)] = defs
            root["$defs"] = defs

    # -- targets ------------------------------------------------------------------------------

    def _body(self, loc: Location, direction: Direction) -> Any:
        entry = self._defs[(loc, direction)]
        assert not isinstance(entry, RefError)
        return entry[0]

    def _closure(self, deps: dict[Location, None], direction: Direction) -> tuple[Location, ...]:
        """Every target ``deps`` reach, converting them on first need; raises the first error."""
        if not deps:
            return ()
        if len(deps) == 1:
            return self._closure_of(next(iter(deps)), direction)
        merged: dict[Location, None] = {}
        for loc in deps:
            merged.update(dict.fromkeys(self._closure_of(loc, direction)))
        return tuple(merged)

    def _closure_of(self, start: Location, direction: Direction) -> tuple[Location, ...]:
        cached = self._closures.get((start, direction))
        if cached is None:
            seen: dict[Location, None] = {}
            stack = [start]
            try:
                while stack:
                    loc = stack.pop()
                    if loc in seen:
                        continue
                    seen[loc] = None
                    entry = self._defs.get((loc, direction)) or self._convert_target(loc, direction)
                    if isinstance(entry, RefError):
                        raise entry
                    stack.extend(entry[1])
                cached = tuple(seen)
            except RefError as exc:
                cached = exc
            self._closures[(start, direction)] = cached
        if isinstance(cached, RefError):
            raise cached
        return cached

    def _convert_target(self, loc: Location, direction: Direction) -> tuple[Any, tuple[Location, ...]] | RefError:
        deps: dict[Location, None] = {}
        entry: tuple[Any, tuple[Location, ...]] | RefError
        try:
            entry = (self._node(self._docs.node(loc), loc.doc, direction, deps, frozenset()), tuple(deps))
        except RefError as exc:
            entry = exc.locate(loc.doc, loc.pointer)
        self._defs[(loc, direction)] = entry
        return entry

    def _target(self, ref: str, doc: str) -> Location:
        loc = self._docs.resolve(ref, doc)
        if loc not in self._exists:
            self._docs.node(loc, ref)
            self._exists.add(loc)
        return loc

    # -- one schema object ----------------------------------------------------------------------

    def _node(self, node: Any, doc: str, direction: Direction, deps: dict[Location, None],
              inherited: frozenset[str]) -> Any:
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            return {}  # garbage where a schema belongs: accept anything rather than fail the load
        build = _Build(node, doc, direction, deps, inherited)
        ref = node.get("$ref", node.get("$dynamicRef"))
        if isinstance(ref, str):
            loc = self._target(ref, doc)
            deps[loc] = None
            build.out["$ref"] = ""  # named in finish()
            self._ref_sites.append((build.out, loc))
        for key, value in node.items():
            handler = _KEYWORD_HANDLERS.get(key)
            if handler is not None:  # keywords 2020-12 does not know are dropped
                handler(self, build, key, value)
        return self._finish_node(build)

    def _finish_node(self, build: _Build) -> Any:
        """What needs several keywords at once: bounds, examples, ``required`` and ``nullable``."""
        out, node = build.out, build.node
        if build.exclusive:
            exclusive_bounds(build.exclusive, out)
        if build.examples is not None or build.example is not _NO_EXAMPLE:
            examples = build.examples or []
            if build.example is not _NO_EXAMPLE and build.example not in examples:
                examples.append(build.example)
            out["examples"] = examples
        integer_bounds(out)
        if build.direction == "response" and isinstance(node.get("x-expansionResources"), dict) \
                and isinstance(out.get("anyOf"), list):
            out[EXPANDABLE] = True
        if "required" in out:
            flagged = build.inherited | flagged_properties(self._docs, node, build.doc, build.direction)
            kept = [n for n in out["required"] if n not in flagged] if flagged else out["required"]
            if kept:
                out["required"] = kept
            else:
                del out["required"]
        if node.get("nullable") is True or node.get("x-nullable") is True:
            return allow_null(out)
        return out

    # -- one keyword each (see _KEYWORD_HANDLERS); a value of the wrong shape is dropped -------------

    def _kw_string(self, build: _Build, key: str, value: Any) -> None:
        if isinstance(value, str):
            build.out[key] = value

    def _kw_schema_map(self, build: _Build, key: str, value: Any) -> None:
        if isinstance(value, dict):
            build.out[key] = self._map(key, value, build.doc, build.direction, build.deps)

    def _kw_schema(self, build: _Build, key: str, value: Any) -> None:
        if isinstance(value, dict | bool):
            build.out[key] = self._sub(key, value, build.doc, build.direction, build.deps)

    def _kw_schema_list(self, build: _Build, key: str, value: Any) -> None:
        if isinstance(value, list) and value:
            # allOf members inherit the read/write-only names, so `required` drops them there too
            members = (build.inherited | flagged_properties(self._docs, build.node, build.doc, build.direction)
                       if key == "allOf" else frozenset())
            build.out[key] = self._list(key, value, build.doc, build.direction, build.deps, members)

    def _kw_items(self, build: _Build, key: str, value: Any) -> None:
        if isinstance(value, list):  # draft-4 tuple form
            build.out["prefixItems"] = self._list(key, value, build.doc, build.direction, build.deps, frozenset())
            extra = build.node.get("additionalItems")
            if isinstance(extra, dict | bool):
                build.out["items"] = self._sub("additionalItems", extra, build.doc, build.direction, build.deps)
        else:
            self._kw_schema(build, key, value)

    def _kw_type(self, build: _Build, key: str, value: Any) -> None:
        if value == "file":
            build.out["type"] = "string"
            build.out.setdefault("format", "binary")
        else:
            types = type_names(value)
            if types:
                build.out[key] = types

    def _kw_required(self, build: _Build, key: str, value: Any) -> None:
        if isinstance(value, list):
            build.out[key] = list(dict.fromkeys(n for n in value if isinstance(n, str)))

    def _kw_enum(self, build: _Build, key: str, value: Any) -> None:
        build.out[key] = list(value) if isinstance(value, list) else [value]

    def _kw_any(self, build: _Build, key: str, value: Any) -> None:
        build.out[key] = value

    def _kw_count(self, build: _Build, key: str, value: Any) -> None:
        count = as_count(value)
        if count is not None:
            build.out[key] = count

    def _kw_number(self, build: _Build, key: str, value: Any) -> None:
        number = as_number(value)
        if number is not None:
            build.out[key] = number

    def _kw_positive(self, build: _Build, key: str, value: Any) -> None:
        number = as_number(value)
        if number is not None and number > 0:
            build.out[key] = number

    def _kw_exclusive(self, build: _Build, key: str, value: Any) -> None:
        build.exclusive[key] = value  # boolean (3.0) or numeric (3.1): settled in _finish_node

    def _kw_boolean(self, build: _Build, key: str, value: Any) -> None:
        if isinstance(value, bool):
            build.out[key] = value

    def _kw_pattern(self, build: _Build, key: str, value: Any) -> None:
        if isinstance(value, str) and self._regex_ok(value):
            build.out[key] = value

    def _kw_examples(self, build: _Build, key: str, value: Any) -> None:
        if isinstance(value, list):
            build.examples = list(value)

    def _kw_example(self, build: _Build, key: str, value: Any) -> None:
        build.example = value

    def _kw_dependent_required(self, build: _Build, key: str, value: Any) -> None:
        if isinstance(value, dict):
            build.out[key] = dependent_required(value)

    def _kw_dependencies(self, build: _Build, key: str, value: Any) -> None:
        """Draft-4..7 ``dependencies`` split into ``dependentRequired`` / ``dependentSchemas``."""
        if not isinstance(value, dict):
            return
        for name, sub in value.items():
            if isinstance(sub, list):
                build.out.setdefault("dependentRequired", {})[name] = list(
                    dict.fromkeys(n for n in sub if isinstance(n, str))
                )
            elif isinstance(sub, dict | bool):
                try:
                    converted = self._node(sub, build.doc, build.direction, build.deps, frozenset())
                except RefError as exc:
                    exc.path += [name, key]
                    raise
                build.out.setdefault("dependentSchemas", {})[name] = converted

    def _sub(self, key: str, value: Any, doc: str, direction: Direction, deps: dict[Location, None]) -> Any:
        try:
            return self._node(value, doc, direction, deps, frozenset())
        except RefError as exc:
            exc.path.append(key)
            raise

    def _map(self, key: str, value: dict[str, Any], doc: str, direction: Direction,
             deps: dict[Location, None]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, sub in value.items():
            if key == "patternProperties" and not self._regex_ok(name):
                continue
            try:
                out[name] = self._node(sub, doc, direction, deps, frozenset())
            except RefError as exc:
                exc.path += [name, key]
                raise
        return out

    def _list(self, key: str, value: list[Any], doc: str, direction: Direction, deps: dict[Location, None],
              inherited: frozenset[str]) -> list[Any]:
        out = []
        for i, sub in enumerate(value):
            try:
                out.append(self._node(sub, doc, direction, deps, inherited))
            except RefError as exc:
                exc.path += [str(i), key]
                raise
        return out

    def _regex_ok(self, pattern: str) -> bool:
        ok = self._patterns.get(pattern)
        if ok is None:
            try:  # compiling is the only check that matches what validators will do with it
                jsonschema_rs.validator_for({"pattern": pattern})
                ok = True
            except (jsonschema_rs.ValidationError, ValueError):
                ok = False
            self._patterns[pattern] = ok
            if not ok:
                log.debug("dropping pattern %r: not a valid ECMA-262 regular expression", pattern)
        return ok


@dataclass(slots=True)
class _Build:
    """One schema object while its keywords are converted: the input, where it sits, and what
    the keyword handlers have built so far (``examples``/``example``/``exclusive`` are settled
    after the last keyword, since they combine several)."""

    node: dict[str, Any]
    doc: str
    direction: Direction
    deps: dict[Location, None]
    inherited: frozenset[str]
    out: dict[str, Any] = field(default_factory=dict)
    examples: list[Any] | None = None
    example: Any = _NO_EXAMPLE
    exclusive: dict[str, Any] = field(default_factory=dict)


_KeywordHandler = Callable[[SchemaConverter, _Build, str, Any], None]
# keyword -> its handler; the keywords JSON Schema 2020-12 keeps (plus the OpenAPI ones converted)
_KEYWORD_HANDLERS: dict[str, _KeywordHandler] = {
    **dict.fromkeys(("properties", "patternProperties", "dependentSchemas"), SchemaConverter._kw_schema_map),
    **dict.fromkeys(("additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
                     "unevaluatedItems", "unevaluatedProperties", "contentSchema"), SchemaConverter._kw_schema),
    **dict.fromkeys(("allOf", "anyOf", "oneOf", "prefixItems"), SchemaConverter._kw_schema_list),
    **dict.fromkeys(("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties",
                     "maxContains", "minContains"), SchemaConverter._kw_count),
    **dict.fromkeys(("minimum", "maximum"), SchemaConverter._kw_number),
    **dict.fromkeys(("exclusiveMinimum", "exclusiveMaximum"), SchemaConverter._kw_exclusive),
    "multipleOf": SchemaConverter._kw_positive,
    **dict.fromkeys(("uniqueItems", "readOnly", "writeOnly", "deprecated"), SchemaConverter._kw_boolean),
    **dict.fromkeys(("title", "description", "format", "contentMediaType", "contentEncoding", "$comment"),
                    SchemaConverter._kw_string),
    "pattern": SchemaConverter._kw_pattern,
    **dict.fromkeys(("default", "const"), SchemaConverter._kw_any),
    "enum": SchemaConverter._kw_enum,
    "examples": SchemaConverter._kw_examples,
    "example": SchemaConverter._kw_example,
    "required": SchemaConverter._kw_required,
    "type": SchemaConverter._kw_type,
    "dependentRequired": SchemaConverter._kw_dependent_required,
    "dependencies": SchemaConverter._kw_dependencies,
    "items": SchemaConverter._kw_items,
}

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
  every keyword JSON Schema 2020-12 does not know are dropped; keyword values the 2020-12
  meta-schema would reject (a non-list ``required``, a pattern that does not compile, ...) are
  dropped too, so each result compiles;
- request direction: ``readOnly`` properties leave ``required``; response: ``writeOnly`` ones.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import jsonschema_rs

from simulator.spec.model import JSONSchema
from simulator.spec.refs import Documents, Location, RefError

from .keywords import (
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

Direction = Literal["request", "response"]


(_MAP, _ONE, _LIST, _NONNEG, _NUM, _EXCL, _POSITIVE, _BOOL, _STR, _PATTERN, _ANY, _ENUM, _EXAMPLES,
 _EXAMPLE, _REQUIRED, _TYPE, _DEP_REQUIRED, _DEPENDENCIES, _ITEMS) = range(19)
_KEYWORDS: dict[str, int] = {
    **dict.fromkeys(("properties", "patternProperties", "dependentSchemas"), _MAP),
    **dict.fromkeys(("additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
                     "unevaluatedItems", "unevaluatedProperties", "contentSchema"), _ONE),
    **dict.fromkeys(("allOf", "anyOf", "oneOf", "prefixItems"), _LIST),
    **dict.fromkeys(("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties",
                     "maxContains", "minContains"), _NONNEG),
    **dict.fromkeys(("minimum", "maximum"), _NUM),
    **dict.fromkeys(("exclusiveMinimum", "exclusiveMaximum"), _EXCL),
    "multipleOf": _POSITIVE,
    **dict.fromkeys(("uniqueItems", "readOnly", "writeOnly", "deprecated"), _BOOL),
    **dict.fromkeys(("title", "description", "format", "contentMediaType", "contentEncoding", "$comment"), _STR),
    "pattern": _PATTERN,
    **dict.fromkeys(("default", "const"), _ANY),
    "enum": _ENUM,
    "examples": _EXAMPLES,
    "example": _EXAMPLE,
    "required": _REQUIRED,
    "type": _TYPE,
    "dependentRequired": _DEP_REQUIRED,
    "dependencies": _DEPENDENCIES,
    "items": _ITEMS,
}
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
        out: dict[str, Any] = {}
        ref = node.get("$ref", node.get("$dynamicRef"))
        if isinstance(ref, str):
            loc = self._target(ref, doc)
            deps[loc] = None
            out["$ref"] = ""  # named in finish()
            self._ref_sites.append((out, loc))
        examples: list[Any] | None = None
        example: Any = _NO_EXAMPLE
        exclusive: dict[str, Any] = {}
        for key, value in node.items():
            kind = _KEYWORDS.get(key)
            if kind is None:
                continue
            if kind == _STR:
                if isinstance(value, str):
                    out[key] = value
            elif kind == _MAP:
                if isinstance(value, dict):
                    out[key] = self._map(key, value, doc, direction, deps)
            elif kind == _ONE:
                if isinstance(value, dict | bool):
                    out[key] = self._sub(key, value, doc, direction, deps)
            elif kind == _LIST:
                if isinstance(value, list) and value:
                    members = inherited | self._flagged(node, doc, direction) if key == "allOf" else frozenset()
                    out[key] = self._list(key, value, doc, direction, deps, members)
            elif kind == _ITEMS:
                if isinstance(value, list):  # draft-4 tuple form
                    out["prefixItems"] = self._list(key, value, doc, direction, deps, frozenset())
                    extra = node.get("additionalItems")
                    if isinstance(extra, dict | bool):
                        out["items"] = self._sub("additionalItems", extra, doc, direction, deps)
                elif isinstance(value, dict | bool):
                    out[key] = self._sub(key, value, doc, direction, deps)
            elif kind == _TYPE:
                if value == "file":
                    out["type"] = "string"
                    out.setdefault("format", "binary")
                else:
                    types = type_names(value)
                    if types:
                        out[key] = types
            elif kind == _REQUIRED:
                if isinstance(value, list):
                    out[key] = list(dict.fromkeys(n for n in value if isinstance(n, str)))
            elif kind == _ENUM:
                out[key] = list(value) if isinstance(value, list) else [value]
            elif kind == _ANY:
                out[key] = value
            elif kind == _NONNEG:
                count = as_count(value)
                if count is not None:
                    out[key] = count
            elif kind in (_NUM, _POSITIVE):
                number = as_number(value)
                if number is not None and (kind == _NUM or number > 0):
                    out[key] = number
            elif kind == _EXCL:
                exclusive[key] = value
            elif kind == _BOOL:
                if isinstance(value, bool):
                    out[key] = value
            elif kind == _PATTERN:
                if isinstance(value, str) and self._regex_ok(value):
                    out[key] = value
            elif kind == _EXAMPLES:
                if isinstance(value, list):
                    examples = list(value)
            elif kind == _EXAMPLE:
                example = value
            elif kind == _DEP_REQUIRED:
                if isinstance(value, dict):
                    out[key] = dependent_required(value)
            elif kind == _DEPENDENCIES and isinstance(value, dict):
                self._dependencies(value, out, doc, direction, deps)
        if exclusive:
            exclusive_bounds(exclusive, out)
        if examples is not None or example is not _NO_EXAMPLE:
            examples = examples or []
            if example is not _NO_EXAMPLE and example not in examples:
                examples.append(example)
            out["examples"] = examples
        integer_bounds(out)
        if "required" in out:
            flagged = inherited | self._flagged(node, doc, direction)
            kept = [n for n in out["required"] if n not in flagged] if flagged else out["required"]
            if kept:
                out["required"] = kept
            else:
                del out["required"]
        if node.get("nullable") is True or node.get("x-nullable") is True:
            out = allow_null(out)
        return out

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

    def _dependencies(self, value: dict[str, Any], out: dict[str, Any], doc: str, direction: Direction,
                      deps: dict[Location, None]) -> None:
        """Draft-4..7 ``dependencies`` split into ``dependentRequired`` / ``dependentSchemas``."""
        for name, sub in value.items():
            if isinstance(sub, list):
                out.setdefault("dependentRequired", {})[name] = list(
                    dict.fromkeys(n for n in sub if isinstance(n, str))
                )
            elif isinstance(sub, dict | bool):
                try:
                    converted = self._node(sub, doc, direction, deps, frozenset())
                except RefError as exc:
                    exc.path += [name, "dependencies"]
                    raise
                out.setdefault("dependentSchemas", {})[name] = converted

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

    # -- readOnly / writeOnly ---------------------------------------------------------------------

    def _flagged(self, node: dict[str, Any], doc: str, direction: Direction, depth: int = 0) -> frozenset[str]:
        """Property names that must leave ``required`` in this direction (own properties and
        those of ``allOf`` members, following ``$ref``)."""
        flag = "readOnly" if direction == "request" else "writeOnly"
        names: set[str] = set()
        props = node.get("properties")
        if isinstance(props, dict):
            for name, prop in props.items():
                target = self._raw(prop, doc)
                if target is not None and target[0].get(flag) is True:
                    names.add(name)
        members = list(node["allOf"]) if isinstance(node.get("allOf"), list) else []
        if isinstance(node.get("$ref"), str):  # 3.1: `required` next to a `$ref` names its properties
            members.append({"$ref": node["$ref"]})
        for member in members if depth < 8 else ():
            target = self._raw(member, doc)
            if target is not None:
                names |= self._flagged(target[0], target[1], direction, depth + 1)
        return frozenset(names)

    def _raw(self, node: Any, doc: str) -> tuple[dict[str, Any], str] | None:
        """``node`` with its ``$ref`` chain followed, as written in the spec (None if broken)."""
        for _ in range(16):
            if not isinstance(node, dict):
                return None
            ref = node.get("$ref")
            if not isinstance(ref, str) or "readOnly" in node or "writeOnly" in node:
                return node, doc
            try:
                node, loc = self._docs.lookup(ref, doc)
            except RefError:
                return None
            doc = loc.doc
        return None

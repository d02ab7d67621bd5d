"""Stripe's ``expand[]``: a request names response fields whose ids it wants as the objects they
name (``customer``; ``data.customer`` in each item of a list; ``invoice.subscription``, the
invoice expanded and then its subscription), and the response carries those objects.

Which fields can expand is the spec's to say: Stripe marks them with ``x-expansionResources``,
which the converter keeps as the annotation :data:`~simulator.spec.jsonschema.keywords.EXPANDABLE`
on the field's ``anyOf`` of the id and the objects. Without a request's ``expand``, such a field
answers its id (the generator takes the id's branch first). With it:

* the object is the session's record of that id when the spec has a collection of it (the
  resource named like the object's schema, ``#/components/schemas/customer`` -> ``customer``,
  holding the id: a customer the client created, or a fixture), shown as a read shows it;
* otherwise (no such collection, or no record of that id) an object generated for the object's
  schema from the request's seed and the field's place in the body, with its ``id`` member set
  to the id (so ``charge`` and ``charge.customer`` expand the same charge);
* each field along a path expands where it can, and the path goes on inside what it expanded
  to; where a value holds no id (a null customer), the rest of the path is ignored; an object
  that does not fit its schema is not used (the field keeps its id). The whole body is checked
  against the response schema once more, and answered as it was if the expansions made it
  invalid.

A path the response *schema* does not allow is refused before the request does anything, as
Stripe refuses it (:func:`refusal`: 400, "This property cannot be expanded (nope)."): its last
field must be expandable, each field before it a member of what the path has reached (an
expandable field standing for its object, a list for its items, ``data.customer``), and it may
name at most :data:`MAX_DEPTH` fields (Stripe's limit of expansion levels). Only where the
operation's response marks expandable fields: elsewhere a parameter named ``expand`` is the
API's own (Jira's ``expand=names,changelog``) and nothing is refused or expanded by it.

Expanding reads; it never writes, so the state hash stays as it was. A request names at most
:data:`MAX_PATHS` paths; the rest are ignored, not refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.datagen.plan import GenerationError
from simulator.spec.jsonschema.keywords import EXPANDABLE
from simulator.spec.model import JSONSchema
from simulator.spec.navigation import array_items, deref, object_properties, primary_type

from .shaping import Shaper

MAX_PATHS = 20
MAX_DEPTH = 4
EXPAND = "expand"

Lookup = Callable[[str, str], dict[str, Any] | None]
"""(the expanded object's schema name, the id) -> the record the session holds, or None."""


def asked(query: dict[str, Any], body: Any) -> tuple[str, list[Any]] | None:
    """(where, what) a request asks to expand: its ``expand`` query parameter (``"query"``), else
    its body's ``expand`` member (``"body"``), as a list; None when it asks nothing."""
    where, what = "query", query.get(EXPAND)
    if what is None and isinstance(body, dict):
        where, what = "body", body.get(EXPAND)
    if what is None:
        return None
    return where, what if isinstance(what, list) else [what]


def requested_paths(query: dict[str, Any], body: Any) -> list[list[str]]:
    """The fields a request asks to expand (:func:`asked`), each split at its dots; at most
    :data:`MAX_PATHS`, duplicates once."""
    found = asked(query, body)
    if found is None:
        return []
    paths = [item.split(".") for item in dict.fromkeys(a for a in found[1] if isinstance(a, str) and a)]
    return [path for path in paths[:MAX_PATHS] if len(path) <= MAX_DEPTH and all(path)]


def marks_expandable(root: JSONSchema) -> bool:
    """Whether a response schema has an expandable field (:data:`EXPANDABLE`) anywhere."""
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get(EXPANDABLE) is True:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def refusal(root: JSONSchema, paths: list[Any]) -> str | None:
    """Stripe's reason to refuse the first of ``paths`` (at most :data:`MAX_PATHS` of them,
    duplicates once) that a response valid for ``root`` cannot expand, or None."""
    for text in list(dict.fromkeys(p if isinstance(p, str) else repr(p) for p in paths))[:MAX_PATHS]:
        path = text.split(".")
        if len(path) > MAX_DEPTH:
            return f"You cannot expand more than {MAX_DEPTH} levels of a property ({text})."
        if not all(path) or not _names_expandable(root, path):
            return f"This property cannot be expanded ({text})."
    return None


def _names_expandable(root: JSONSchema, path: list[str]) -> bool:
    """Whether ``path`` walks ``root``'s members to an expandable field (see :func:`refusal`)."""
    node: Any = root
    for i, name in enumerate(path):
        schema = deref(root, node)
        for _ in range(MAX_DEPTH):  # a list's items take the path (nested lists: a few levels)
            items = array_items(root, schema)
            if items is None:
                break
            schema = deref(root, items)
        prop = _member(root, schema, name)
        if prop is None:
            return False
        expandable = _expandable(root, prop)
        if i == len(path) - 1:
            return expandable is not None
        node = prop if expandable is None else _object_branch(root, expandable)
        if node is None:
            return False
    return False


class Expander:
    """Expands the fields a request names in a response body (see the module text)."""

    def __init__(self, shaper: Shaper, lookup: Lookup) -> None:
        self.shaper = shaper
        self.lookup = lookup

    def expand(self, root: JSONSchema, body: Any, paths: list[list[str]], seed: str) -> Any:
        """``body`` (valid for ``root``) with each of ``paths`` expanded, or ``body`` itself
        when none changed anything or the result would not be valid for ``root``."""
        out = body
        for path in paths:  # seeded by where an object goes, not by the path that asked for it
            out = self._at(root, root, out, path, f"{seed}|expand")
        if out is body or not self.shaper.is_valid(root, root, out):
            return body
        return out

    def _at(self, root: JSONSchema, node: Any, value: Any, path: list[str], seed: str) -> Any:
        """``value`` (for schema ``node``) with ``path`` expanded below it; ``value`` itself
        where nothing changed."""
        if not path:
            return value
        schema = deref(root, node)
        if isinstance(value, list):  # a list's items each take the path (``data.customer``)
            items = array_items(root, schema)
            if not items:
                return value
            changed = [self._at(root, items, item, path, f"{seed}/{i}") for i, item in enumerate(value)]
            return changed if any(new is not old for new, old in zip(changed, value, strict=True)) else value
        if not isinstance(value, dict) or path[0] not in value:
            return value
        name, rest = path[0], path[1:]
        prop = _member(root, schema, name)
        if prop is None:
            return value
        member = value[name]
        expandable = _expandable(root, prop)
        if expandable is not None and isinstance(member, str):
            found = self._object(root, expandable, member, f"{seed}/{name}")
            if found is None:
                return value
            branch, member = found
            prop = branch
        new = self._at(root, prop, member, rest, f"{seed}/{name}")
        return value if new is value[name] else {**value, name: new}

    def _object(self, root: JSONSchema, expandable: JSONSchema, given: str, seed: str) -> tuple[Any, Any] | None:
        """(the object branch, the object) that id ``given`` expands to, or None: the first of
        the session's record, the generated object with the record's scalar members, and the
        generated object, that comes out of ``conform`` (secrets and ``writeOnly`` members left
        out, as a read shows a record) valid for the branch and with that id."""
        branch = _object_branch(root, expandable)
        if branch is None:
            return None  # the first object branch is the one a field expands to
        ref = branch.get("$ref") if isinstance(branch, dict) else None
        name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else ""
        props = object_properties(root, deref(root, branch))
        try:
            made = self.shaper.generate(root, branch, seed, name=name or None)
        except GenerationError:  # a schema no value the generator finds fits: the field keeps its id
            return None
        if not isinstance(made, dict):
            return None
        generated = {**made, "id": given} if "id" in props else made
        record = self.lookup(name, given) if name else None
        candidates: list[dict[str, Any]] = [generated]
        if record is not None:
            scalars = {k: v for k, v in record.items() if k in props and not isinstance(v, (dict, list))}
            candidates[:0] = [record, {**generated, **scalars}]
        for candidate in candidates:
            try:
                shown = self.shaper.conform(root, branch, candidate, seed, hide_secrets=True)
            except GenerationError:
                continue
            if isinstance(shown, dict) and shown.get("id", given) == given and self.shaper.is_valid(root, branch, shown):
                return branch, shown
        return None


def _member(root: JSONSchema, schema: JSONSchema, name: str) -> Any:
    """The schema of member ``name`` of an object valid for ``schema``: its property, or that of
    the ``anyOf``/``oneOf`` branch with it (a field already expanded); None when it has none."""
    props = object_properties(root, schema)
    if name in props:
        return props[name]
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key, ()):
            resolved = deref(root, branch)
            if primary_type(root, resolved) == "object" and name in object_properties(root, resolved):
                return object_properties(root, resolved)[name]
    return None


def _object_branch(root: JSONSchema, expandable: JSONSchema) -> Any:
    """The branch an expandable field expands to: its first object branch (None if it has none)."""
    return next((b for b in expandable.get("anyOf", ()) if primary_type(root, deref(root, b)) == "object"), None)


def _expandable(root: JSONSchema, prop: Any) -> JSONSchema | None:
    """The node of a property that carries :data:`EXPANDABLE` (itself, or the branch a
    ``nullable`` wrapper holds), or None."""
    node = deref(root, prop)
    if node.get(EXPANDABLE) is True:
        return node
    for branch in node.get("anyOf", ()):
        inner = deref(root, branch)
        if inner.get(EXPANDABLE) is True:
            return inner
    return None

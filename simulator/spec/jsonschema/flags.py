"""Which properties leave ``required`` in one direction: ``readOnly`` ones in a request,
``writeOnly`` ones in a response (:mod:`.convert` applies it). The flags are read from the spec
as written, following ``$ref`` chains and ``allOf`` members, so a property flagged in a shared
component counts wherever the component is used."""

from __future__ import annotations

from typing import Any, Literal

from simulator.spec.refs import Documents, RefError

Direction = Literal["request", "response"]


def flagged_properties(docs: Documents, node: dict[str, Any], doc: str, direction: Direction,
                       depth: int = 0) -> frozenset[str]:
    """Property names that must leave ``required`` in this direction (own properties and
    those of ``allOf`` members, following ``$ref``)."""
    flag = "readOnly" if direction == "request" else "writeOnly"
    names: set[str] = set()
    props = node.get("properties")
    if isinstance(props, dict):
        for name, prop in props.items():
            target = _raw(docs, prop, doc)
            if target is not None and target[0].get(flag) is True:
                names.add(name)
    members = list(node["allOf"]) if isinstance(node.get("allOf"), list) else []
    if isinstance(node.get("$ref"), str):  # 3.1: `required` next to a `$ref` names its properties
        members.append({"$ref": node["$ref"]})
    for member in members if depth < 8 else ():
        target = _raw(docs, member, doc)
        if target is not None:
            names |= flagged_properties(docs, target[0], target[1], direction, depth + 1)
    return frozenset(names)


def _raw(docs: Documents, node: Any, doc: str) -> tuple[dict[str, Any], str] | None:
    """``node`` with its ``$ref`` chain followed, as written in the spec (None if broken)."""
    for _ in range(16):
        if not isinstance(node, dict):
            return None
        ref = node.get("$ref")
        if not isinstance(ref, str) or "readOnly" in node or "writeOnly" in node:
            return node, doc
        try:
            node, loc = docs.lookup(ref, doc)
        except RefError:
            return None
        doc = loc.doc
    return None

"""``$defs`` keys for referenced locations: the component's own name where it is unambiguous
(``#/components/schemas/Pet`` -> ``Pet``), else one built from the document and the pointer.
Pure, and a function of the *set* of locations only, so names never depend on load order."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from simulator.canonical import pointer_tokens
from simulator.spec.refs import Location

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_COMPONENT_PARENTS = ("schemas", "definitions", "$defs")


def _sanitize(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._-") or "schema"


def _doc_part(doc: str) -> str:
    """A document key as name material: ``../common/pet.yaml`` -> ``common_pet``."""
    path = re.sub(r"^[a-z]+://", "", doc)
    stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    return "_".join(p for p in stem.split("/") if p not in ("", ".", ".."))


def _doc_stem(doc: str) -> str:
    name = doc.rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def _preferred(loc: Location) -> str:
    tokens = pointer_tokens(loc.pointer)
    if len(tokens) >= 2 and tokens[-2] in _COMPONENT_PARENTS and (
        len(tokens) == 2 or tokens[-2] == "$defs" or (len(tokens) == 3 and tokens[0] == "components")
    ):
        return _sanitize(tokens[-1])
    if loc.doc and len(tokens) <= 1:
        return _sanitize(tokens[0] if tokens else _doc_stem(loc.doc))
    return _qualified(loc)


def _qualified(loc: Location) -> str:
    parts = [_doc_part(loc.doc)] if loc.doc else []
    return _sanitize("_".join([*parts, *pointer_tokens(loc.pointer)]))


def def_names(locations: Iterable[Location]) -> dict[Location, str]:
    """A ``$defs`` key per location: the component's name (``#/components/schemas/Pet`` -> ``Pet``)
    when no other location wants it, else a name built from the document and the pointer.
    Depends only on the set of locations, never on the order they were met."""
    locs = sorted(set(locations))
    preferred = {loc: _preferred(loc) for loc in locs}
    wanted = Counter(preferred.values())
    names = {loc: name for loc, name in preferred.items() if wanted[name] == 1}
    taken = set(names.values())
    for loc in locs:
        if loc in names:
            continue
        base = candidate = _qualified(loc)
        n = 2
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        names[loc] = candidate
        taken.add(candidate)
    return names

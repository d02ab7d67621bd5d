"""Where each argument value of a call came from: an earlier step's response, found by value
or declared by the policy, at the granularity of argument *leaves*.

What a caller may rely on:

* **Keys are JSON pointers into the arguments** (``/petId``, ``/body/dashboard_id``,
  ``/body/block_feeds/0/feed_id``), so a value deep in a request body is traced like a
  top-level one. A declared source may name a whole sub-object (``/body``); it is kept when
  the value at its pointer equals that sub-object.
* **Declared first.** A source the policy declares (keyed by pointer, or by a top-level
  argument name) is kept only when its pointer resolves, in one of the earlier steps, to the
  argument's value (loosely: ``"12"`` equals ``12``, see :func:`~toolgrad.json_values.loosely_equal`).
* **Found by value otherwise**: every scalar leaf that is non-trivial (a string of 3+
  characters, a number other than 0/1) is matched against the earlier responses, the latest
  step first. Within a response the pointer preferred is one inside a list item another
  source of the same call already uses (a call takes its fields from one record), then one
  whose key is related to the argument's (``petId`` ~ ``id``), then the shallowest, then the
  first in document order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from simulator.canonical import escape_token, lookup_pointer, pointer_tokens
from toolgrad.json_values import (
    argument_pointer,
    is_nontrivial,
    leaf_key,
    leaves,
    loosely_equal,
)
from toolgrad.records import ArgumentSource

_MAX_WALK = 20_000  # JSON nodes searched per response when detecting argument sources

EarlierStep = tuple[int, int, Any]  # (chain, step, response body)
Claim = tuple[int, int, str]  # (chain, step, pointer into that step's response)


@lru_cache(maxsize=1 << 16)  # argument and field names, compared again for every leaf
def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def names_related(argument: str, key: str) -> bool:
    """``petId`` ~ ``id``, ``feed_key`` ~ ``key``, ``username`` ~ ``username``."""
    a, k = _norm(argument), _norm(key)
    if not a or not k:
        return False
    return a == k or (a.endswith(k) and k in ("id", "key", "name", "uuid", "slug")) or k.endswith(a)


@lru_cache(maxsize=1 << 16)  # the pointers of a sample's sources, read again for every later argument
def list_item(pointer: str) -> str | None:
    """The pointer of the first list item a response pointer goes through
    (``/data/3/company_id`` -> ``/data/3``), or None when it goes through no list."""
    out = ""
    for token in pointer_tokens(pointer):
        out += "/" + escape_token(token)
        if token.isdigit():
            return out
    return None


def _lookup_keys(value: Any) -> list[tuple[str, Any]]:
    """Every key a scalar is looked up by: :func:`_first_lookup_key`'s, then a numeric string's
    number, an int's text."""
    first = _first_lookup_key(value)
    if first is None:
        return []
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 19:
        return [first, ("n", float(int(value)))]
    if isinstance(value, int):
        return [first, ("s", str(value))]
    return [first]


def _first_lookup_key(value: Any) -> tuple[str, Any] | None:
    """``_lookup_keys(value)[0]`` (None when it has none), without building the list."""
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return ("n", float(value))
    if isinstance(value, float):
        return ("n", value)
    return None


class ScalarIndex:
    """Every scalar of a response by value, to find where an argument's value came from."""

    def __init__(self, body: Any) -> None:
        # breadth-first per level (pointer, depth, last key, document order of the scalars):
        # every response a sample sees is indexed, so this is the loop's busiest walk
        hits: dict[tuple[str, Any], list[tuple[str, int, str, int, Any]]] = {}
        self.hits = hits
        level: list[tuple[str, str, Any]] = [("", "", body)]
        budget, depth, order = _MAX_WALK, 0, 0
        while level and budget > 0:
            nxt: list[tuple[str, str, Any]] = []
            for ptr, key, value in level:
                budget -= 1
                if isinstance(value, dict):
                    for k, v in value.items():
                        k = str(k)
                        nxt.append((f"{ptr}/{escape_token(k)}", k, v))
                elif isinstance(value, list):
                    nxt.extend((f"{ptr}/{i}", key, v) for i, v in enumerate(value))
                else:
                    lookup = _first_lookup_key(value)
                    if lookup is not None:
                        found = hits.get(lookup)
                        if found is None:
                            hits[lookup] = [(ptr, depth, key, order, value)]
                        else:
                            found.append((ptr, depth, key, order, value))
                    order += 1
            level = nxt
            depth += 1

    def may_hold(self, value: Any) -> bool:
        """Whether some scalar shares a look-up key with ``value`` (else :meth:`find` is None)."""
        return any(lookup in self.hits for lookup in _lookup_keys(value))

    def find(self, argument: str, value: Any, anchors: frozenset[str] = frozenset()) -> str | None:
        """The best pointer to ``value``: inside an ``anchors`` list item first, then under a
        related key, then the shallowest, then the first in document order."""
        best: tuple[int, int, int, int] | None = None
        found = None
        for lookup in _lookup_keys(value):
            for ptr, depth, key, order, scalar in self.hits.get(lookup, ()):
                if loosely_equal(value, scalar):
                    anchored = 0 if anchors and list_item(ptr) in anchors else 1
                    rank = (anchored, 0 if names_related(argument, key) else 1, depth, order)
                    if best is None or rank < best:
                        best, found = rank, ptr
        return found


def find_pointer(response: Any, argument: str, value: Any) -> str | None:
    """The best pointer to ``value`` in ``response`` (see :meth:`ScalarIndex.find`)."""
    return ScalarIndex(response).find(argument, value)


def _claims_by_pointer(declared: Mapping[str, Claim] | None) -> dict[str, Claim]:
    return {(k if k.startswith("/") else argument_pointer(k)): v for k, v in (declared or {}).items()}


def _holds(found: Any, value: Any) -> bool:
    if isinstance(value, (dict, list)) or isinstance(found, (dict, list)):
        return bool(found == value)
    return bool(found == value or loosely_equal(value, found))


class SourceFinder:
    """:func:`detect_sources` with each response indexed once (responses are held, so the
    ``id``-keyed cache cannot be confused by a reused id)."""

    def __init__(self) -> None:
        self._indexes: dict[int, tuple[Any, ScalarIndex]] = {}

    def index(self, body: Any) -> ScalarIndex:
        hit = self._indexes.get(id(body))
        if hit is None or hit[0] is not body:
            hit = self._indexes[id(body)] = (body, ScalarIndex(body))
        return hit[1]

    def detect(
        self,
        arguments: dict[str, Any],
        earlier: list[EarlierStep],
        declared: Mapping[str, Claim] | None = None,
    ) -> dict[str, ArgumentSource]:
        by_place = {(c, s): body for c, s, body in earlier}
        sources: dict[str, ArgumentSource] = {}
        for pointer, (chain, step, at) in sorted(_claims_by_pointer(declared).items()):
            ok, value = lookup_pointer(arguments, pointer)
            if ok and pointer and (chain, step) in by_place:
                found_ok, found = lookup_pointer(by_place[(chain, step)], at)
                if found_ok and _holds(found, value):
                    sources[pointer] = ArgumentSource(chain=chain, step=step, pointer=at)
        for pointer, value in sorted(leaves(arguments), key=lambda leaf: leaf[0]):
            if pointer in sources or _covered(pointer, sources) or not is_nontrivial(value):
                continue
            for chain, step, body in reversed(earlier):
                index = self.index(body)
                if not index.may_hold(value):
                    continue  # find() would give None: no scalar with one of its look-up keys
                anchors = frozenset(item for s in sources.values() if (s.chain, s.step) == (chain, step)
                                    for item in [list_item(s.pointer)] if item is not None)
                found_at = index.find(leaf_key(pointer), value, anchors)
                if found_at is not None:
                    sources[pointer] = ArgumentSource(chain=chain, step=step, pointer=found_at)
                    break
        return dict(sorted(sources.items()))


def _covered(pointer: str, sources: Mapping[str, ArgumentSource]) -> bool:
    """A declared source of an enclosing object covers every leaf inside it."""
    return any(pointer.startswith(p + "/") for p in sources)


def detect_sources(
    arguments: dict[str, Any],
    earlier: list[EarlierStep],
    declared: Mapping[str, Claim] | None = None,
) -> dict[str, ArgumentSource]:
    """Where each argument leaf's value came from, keyed by its pointer into ``arguments``
    (see the module text)."""
    return SourceFinder().detect(arguments, earlier, declared)

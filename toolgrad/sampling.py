"""Stable hashing and seeded choices: every random decision the generator makes comes from here.

Each choice is a pure function of canonical data: ``sha256`` over the canonical JSON of its
inputs (sorted keys, no whitespace). No global RNG, no ``hash()``, no clock, so the same seed
gives the same choices in every process, whatever ``PYTHONHASHSEED`` is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, TypeVar

from simulator.canonical import canonical_json, strict_canonical_json

T = TypeVar("T")


def stable_hash(*parts: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``parts``."""
    return hashlib.sha256(canonical_json(list(parts))).hexdigest()


def stable_hashes(parts: Sequence[Any], lasts: Sequence[Any]) -> list[str]:
    """``[stable_hash(*parts, last) for last in lasts]``, the shared ``parts`` written once: a
    list's canonical JSON is its items' joined, wherever orjson writes each (else item by item)."""
    try:
        head = strict_canonical_json(list(parts))[:-1] + (b"," if parts else b"")
        tails = [strict_canonical_json(last) for last in lasts]
    except TypeError:  # what canonical_json writes otherwise (the standard library's) is not joined
        return [stable_hash(*parts, last) for last in lasts]
    return [hashlib.sha256(head + tail + b"]").hexdigest() for tail in tails]


def stable_int(*parts: Any) -> int:
    """A 64-bit integer drawn from ``parts``."""
    return int(stable_hash(*parts)[:16], 16)


def stable_unit(*parts: Any) -> float:
    """A float in [0, 1) drawn from ``parts``."""
    return stable_int(*parts) / float(1 << 64)


def stable_ranks(keys: Sequence[str], *parts: Any) -> dict[str, str]:
    """A rank (hex digest) per key drawn from ``parts``: ``sha256(canonical_json(parts) | key)``.
    Cheaper than :func:`stable_hash` per key when ranking many keys under the same parts."""
    return {k: d.hex() for k, d in zip(keys, rank_digests([k.encode() for k in keys], *parts), strict=True)}


def rank_digests(encoded: Sequence[bytes], *parts: Any) -> list[bytes]:
    """:func:`stable_ranks`' ranks as raw digests, in the order of the (UTF-8 encoded) keys: they
    sort as their hex does, for a caller that encodes its keys once and ranks them often."""
    prefix = hashlib.sha256(canonical_json(list(parts)) + b"|")
    digests = []
    for key in encoded:
        digest = prefix.copy()
        digest.update(key)
        digests.append(digest.digest())
    return digests


def stable_shuffle(items: Sequence[T], *parts: Any, key: Any = str) -> list[T]:
    """``items`` in an order drawn from ``parts``; each item's place depends only on its own key."""
    keys = [str(key(item)) for item in items]
    ranks = stable_ranks(keys, *parts)
    # (rank, key, position) tuples compare in C; the position breaks ties as a stable sort would
    order = sorted(zip([ranks[k] for k in keys], keys, range(len(keys)), strict=True))
    return [items[i] for _, _, i in order]


def stable_sample(items: Sequence[T], k: int, *parts: Any, key: Any = str) -> list[T]:
    """``k`` distinct items (all of them when there are fewer), drawn from ``parts``."""
    return stable_shuffle(items, *parts, key=key)[: max(k, 0)]


def stable_pick(items: Sequence[T], *parts: Any) -> T:
    """One item of a non-empty sequence, drawn from ``parts``."""
    if not items:
        raise ValueError("stable_pick needs at least one item")
    return items[stable_int(*parts) % len(items)]

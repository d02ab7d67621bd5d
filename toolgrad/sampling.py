"""Stable hashing and seeded choices: every random decision the generator makes comes from here.

Each choice is a pure function of canonical data: ``sha256`` over the canonical JSON of its
inputs (sorted keys, no whitespace). No global RNG, no ``hash()``, no clock, so the same seed
gives the same choices in every process, whatever ``PYTHONHASHSEED`` is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, TypeVar

from simulator.canonical import canonical_json

T = TypeVar("T")


def stable_hash(*parts: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``parts``."""
    return hashlib.sha256(canonical_json(list(parts))).hexdigest()


def stable_int(*parts: Any) -> int:
    """A 64-bit integer drawn from ``parts``."""
    return int(stable_hash(*parts)[:16], 16)


def stable_unit(*parts: Any) -> float:
    """A float in [0, 1) drawn from ``parts``."""
    return stable_int(*parts) / float(1 << 64)


def stable_ranks(keys: Sequence[str], *parts: Any) -> dict[str, str]:
    """A rank (hex digest) per key drawn from ``parts``: ``sha256(canonical_json(parts) | key)``.
    Cheaper than :func:`stable_hash` per key when ranking many keys under the same parts."""
    prefix = hashlib.sha256(canonical_json(list(parts)) + b"|")
    ranks = {}
    for k in keys:
        digest = prefix.copy()
        digest.update(k.encode())
        ranks[k] = digest.hexdigest()
    return ranks


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

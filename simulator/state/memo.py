"""A memo of a pure function that forgets its oldest entries beyond a size (bounded memory).

The world's fixture memos (``state.World``) are keyed by what clients send (a parent id in a
nested path, any id of a read-only resource), so without a bound a client walking ids would grow
them forever. Forgetting is safe because the memoised function is pure: a forgotten entry is
recomputed identically on its next use.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_MEMO_SIZE = 20_000


class BoundedMemo(dict[K, V]):
    """A dict that drops its oldest insertions once it holds more than ``limit`` entries."""

    def __init__(self, limit: int = DEFAULT_MEMO_SIZE) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        while len(self) > self.limit:
            del self[next(iter(self))]

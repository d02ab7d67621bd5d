"""A compile step done once per JSON text: validators are pure functions of their schema's text.

Both the generator's plans (:func:`simulator.datagen.plan.shared_validator`) and the service's
shaper compile many schema documents that repeat one another's text (on stripe, nine compiles in
ten were of a text compiled before). :class:`TextMemo` keys the compiled object by the digest of
the document's JSON text, so equal documents share one, and forgets the oldest beyond a size.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson

T = TypeVar("T")


class TextMemo(Generic[T]):
    """``compile(document)``, once per JSON text of ``document`` (bounded: the oldest are
    forgotten, and come back the same). A document orjson cannot write (an integer past 64 bits,
    a non-string key) is compiled on its own each time. Thread-safe; two threads may compile
    the same new text at once, and the later result is kept (they are equal)."""

    def __init__(self, compile: Callable[[Any], T], size: int) -> None:
        self._compile = compile
        self._size = size
        self._hits: dict[bytes, T] = {}
        self._lock = threading.Lock()

    def __call__(self, document: Any) -> T:
        try:  # keyed by the text's digest: a root's text (a definition's closure) may be 600 KB
            key = hashlib.sha256(orjson.dumps(document)).digest()
        except TypeError:  # orjson.JSONEncodeError is one
            return self._compile(document)
        with self._lock:
            if key in self._hits:
                return self._hits[key]
        compiled = self._compile(document)
        with self._lock:
            self._hits[key] = compiled
            while len(self._hits) > self._size:
                del self._hits[next(iter(self._hits))]
        return compiled

    def __len__(self) -> int:
        return len(self._hits)

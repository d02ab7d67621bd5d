"""What a model client has spent: calls, tokens, HTTP requests, cache hits, retries and repairs.

A :class:`Tally` is one ``complete()`` call's spending; it is added to every :class:`Meter` that
watches the call (the client's own, and a scoped view's) when the call ends, under the meter's
lock, so a meter shared between threads stays exact.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass(frozen=True, slots=True)
class Usage:
    """What a client (or a scoped view of it) has spent. ``calls``, tokens and ``cache_keys``
    are the same in a recorded run and its replay; ``requests`` and ``cache_hits`` are not."""

    calls: int = 0  # complete() calls answered or failed, from the server or the cache
    prompt_tokens: int = 0  # over every turn of the exchange, repair turns included
    completion_tokens: int = 0
    requests: int = 0  # HTTP requests sent: retries, probes and repair turns included
    cache_hits: int = 0
    retries: int = 0
    repairs: int = 0
    failures: int = 0  # calls that raised ModelError
    cache_keys: tuple[str, ...] = ()  # in call order, each once


@dataclass(slots=True)
class Tally:
    """One complete() call's spending, added to every meter when the call ends."""

    key: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    cache_hit: bool = False
    retries: int = 0
    repairs: int = 0
    failed: bool = False


@dataclass(slots=True)
class Meter:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: dict[str, int] = field(
        default_factory=lambda: {f.name: 0 for f in fields(Usage) if f.name != "cache_keys"})
    keys: dict[str, None] = field(default_factory=dict)

    def add(self, tally: Tally) -> None:
        with self.lock:
            c = self.counts
            c["calls"] += 1
            c["prompt_tokens"] += tally.prompt_tokens
            c["completion_tokens"] += tally.completion_tokens
            c["requests"] += tally.requests
            c["cache_hits"] += tally.cache_hit
            c["retries"] += tally.retries
            c["repairs"] += tally.repairs
            c["failures"] += tally.failed
            self.keys.setdefault(tally.key)

    def snapshot(self, reset: bool = False) -> Usage:
        with self.lock:
            usage = Usage(**self.counts, cache_keys=tuple(self.keys))
            if reset:
                self.counts = {name: 0 for name in self.counts}
                self.keys = {}
        return usage

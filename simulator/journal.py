"""A session's journal: a bounded ring of its requests and responses, read a page at a time.

The journal is a debugging aid, never an input to a response: it keeps the last ``limit``
entries of a session (older ones are dropped, and counted), with every body cut to
``body_limit`` bytes. Memory is therefore at most about ``limit * (3 * body_limit + 300)``
bytes per session, whatever the clients send. Each entry is kept as one JSON ``bytes`` object
(one object for the GC, not a dozen, copied out of orjson's 4 KB output buffer) and decoded
afresh when read.

Sequence numbers count every request the session ever made, so a reader paging with
``after=<last seq seen>`` notices dropped entries as a gap (``dropped`` says how many).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

DEFAULT_JOURNAL_LIMIT = 100  # entries per session
DEFAULT_BODY_LIMIT = 1024  # bytes kept of each request body, response body, path and query
MAX_PAGE = 1000
DEFAULT_PAGE = 100


@dataclass(frozen=True, slots=True)
class JournalPage:
    """Entries with ``seq > after``, oldest first; ``next_after`` is the cursor for the next page
    (None when this page reaches the newest entry); ``dropped`` counts entries the ring no
    longer holds (all older than ``first_seq``)."""

    entries: list[dict[str, Any]]
    next_after: int | None
    first_seq: int
    total: int
    dropped: int


def clip_text(data: bytes | str | None, limit: int) -> tuple[str | None, int]:
    """``data`` as text cut to at most ``limit`` bytes (UTF-8, on a character boundary), with
    its full length in bytes; (None, 0) for no data."""
    if not data:
        return None, 0
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) <= limit:
        return raw.decode("utf-8", "replace"), len(raw)
    return raw[:limit].decode("utf-8", "ignore"), len(raw)


class Journal:
    """The ring itself. ``nbytes`` is what the held entries take (their JSON bytes)."""

    __slots__ = ("_entries", "body_limit", "limit", "nbytes", "seq")

    def __init__(self, limit: int = DEFAULT_JOURNAL_LIMIT, body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.limit = limit
        self.body_limit = body_limit
        # a list, not a deque: a deque's first block costs ~4 KB, a session's whole budget
        # at 10,000 sessions; dropping the oldest of at most ``limit`` entries is cheap enough
        self._entries: list[bytes] = []
        self.nbytes = 0
        self.seq = 0  # entries ever recorded

    def record(self, method: str, path: str, query: tuple[tuple[str, str], ...], body: bytes,
               status: int, response: bytes, state: str) -> None:
        """Append one exchange (and drop the oldest beyond ``limit``); bodies are clipped."""
        if self.limit <= 0:
            self.seq += 1
            return
        cap = self.body_limit
        path_text, _ = clip_text(path, cap)
        query_text, query_len = clip_text("&".join(f"{k}={v}" for k, v in query), cap) if query else (None, 0)
        body_text, body_len = clip_text(body, cap)
        response_text, response_len = clip_text(response, cap)
        entry: dict[str, Any] = {
            "seq": self.seq, "method": method, "path": path_text,
            "query": [list(p) for p in query] if query_len <= cap else None,
            "body": body_text, "body_bytes": body_len,
            "status": status,
            "response": response_text, "response_bytes": response_len,
            "state": state,
        }
        if query_len > cap:
            entry["query_text"] = query_text
        if max(body_len, response_len, query_len) > cap:
            entry["truncated"] = True
        # copied: the bytes orjson returns keep its ~4 KB buffer (RSS, not len), ten times an
        # entry's size; a journal keeps them for good
        data = bytes(memoryview(orjson.dumps(entry)))
        self._entries.append(data)
        self.nbytes += len(data)
        self.seq += 1
        if len(self._entries) > self.limit:
            dropped = len(self._entries) - self.limit
            self.nbytes -= sum(len(e) for e in self._entries[:dropped])
            del self._entries[:dropped]

    def entries(self) -> list[dict[str, Any]]:
        """Every held entry, oldest first."""
        return [orjson.loads(e) for e in self._entries]

    def page(self, after: int = -1, limit: int = DEFAULT_PAGE) -> JournalPage:
        """Up to ``limit`` (capped at :data:`MAX_PAGE`) entries with ``seq > after``."""
        limit = max(1, min(limit, MAX_PAGE))
        first = self.seq - len(self._entries)
        start = max(0, after + 1 - first)
        chosen = [orjson.loads(self._entries[i]) for i in range(start, min(len(self._entries), start + limit))]
        last = chosen[-1]["seq"] if chosen else None
        more = last is not None and last < self.seq - 1
        return JournalPage(chosen, last if more else None, first, self.seq, first)

    def __len__(self) -> int:
        return len(self._entries)

"""A session's journal: a bounded ring of its requests and responses, read a page at a time.

The journal is a debugging aid, never an input to a response: it keeps the last ``limit``
entries of a session (older ones are dropped, and counted), with every body cut to
``body_limit`` bytes. Memory is therefore at most about ``limit * (4 * body_limit + 300)``
bytes per session, whatever the clients send. An entry is kept as one tuple of the request's
own objects and byte slices, and rendered as JSON only when read.

Sequence numbers count every request the session ever made, so a reader paging with
``after=<last seq seen>`` notices dropped entries as a gap (``dropped`` says how many).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


_Entry = tuple[int, str, str, Any, bytes, int, int, bytes, int, str]  # see Journal.record


class Journal:
    """The ring itself. ``nbytes`` approximates what the held entries take."""

    __slots__ = ("_entries", "body_limit", "limit", "nbytes", "seq")

    def __init__(self, limit: int = DEFAULT_JOURNAL_LIMIT, body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.limit = limit
        self.body_limit = body_limit
        # a list of tuples, not a deque of JSON: a deque's first block and orjson's output buffer
        # each cost ~4 KB, more than a whole session should; dropping the oldest of at most
        # ``limit`` entries from a list is cheap enough
        self._entries: list[_Entry] = []
        self.nbytes = 0
        self.seq = 0  # entries ever recorded

    def record(self, method: str, path: str, query: tuple[tuple[str, str], ...], body: bytes,
               status: int, response: bytes, state: str) -> None:
        """Append one exchange (and drop the oldest beyond ``limit``); bodies are clipped.

        Kept as a tuple of the request's own objects and byte slices of at most ``body_limit``
        (no encoding on the hot path: entries are rendered as JSON only when read)."""
        self.seq += 1
        if self.limit <= 0:
            return
        cap = self.body_limit
        query_len = sum(len(k) + len(v) + 2 for k, v in query)
        kept_query: Any = query if query_len <= cap else "&".join(f"{k}={v}" for k, v in query)[:cap]
        # the response is copied: bytes from orjson keep its ~4 KB output buffer, which a slice
        # that covers them whole would keep alive
        entry = (self.seq - 1, method, path if len(path) <= cap else path[:cap], kept_query,
                 body[:cap], len(body), status, bytes(memoryview(response)[:cap]), len(response), state)
        entries = self._entries
        entries.append(entry)
        self.nbytes += _ENTRY_OVERHEAD + min(len(path), cap) + min(query_len, cap) + len(entry[4]) + len(entry[7])
        if len(entries) > self.limit:
            old = entries[0]
            self.nbytes -= _ENTRY_OVERHEAD + len(old[2]) + _query_size(old[3]) + len(old[4]) + len(old[7])
            del entries[0]

    def entries(self) -> list[dict[str, Any]]:
        """Every held entry, oldest first."""
        return [_render(e) for e in self._entries]

    def page(self, after: int = -1, limit: int = DEFAULT_PAGE) -> JournalPage:
        """Up to ``limit`` (capped at :data:`MAX_PAGE`) entries with ``seq > after``."""
        limit = max(1, min(limit, MAX_PAGE))
        first = self.seq - len(self._entries)
        start = max(0, after + 1 - first)
        chosen = [_render(e) for e in self._entries[start:start + limit]]
        last = chosen[-1]["seq"] if chosen else None
        more = last is not None and last < self.seq - 1
        return JournalPage(chosen, last if more else None, first, self.seq, first)

    def __len__(self) -> int:
        return len(self._entries)


_ENTRY_OVERHEAD = 200  # the tuple, its integers and the shared strings, roughly


def _query_size(query: Any) -> int:
    return len(query) if isinstance(query, str) else sum(len(k) + len(v) + 2 for k, v in query)


def _render(entry: _Entry) -> dict[str, Any]:
    seq, method, path, query, body, body_len, status, response, response_len, state = entry
    out: dict[str, Any] = {
        "seq": seq, "method": method, "path": path,
        "query": [list(p) for p in query] if not isinstance(query, str) else None,
        "body": _text(body, body_len > len(body)), "body_bytes": body_len, "status": status,
        "response": _text(response, response_len > len(response)), "response_bytes": response_len, "state": state,
    }
    if isinstance(query, str):
        out["query_text"] = query
    if body_len > len(body) or response_len > len(response) or isinstance(query, str):
        out["truncated"] = True
    return out


def _text(data: bytes, clipped: bool) -> str | None:
    """Bytes as text (undecodable bytes replaced); when ``clipped``, a character the cut split
    in two is dropped."""
    if not data:
        return None
    text = data.decode("utf-8", "replace")
    return text[:-1] if clipped and text.endswith("\ufffd") and not data.endswith("\ufffd".encode()) else text

"""Every session and snapshot one simulator holds, within limits: the memory model of a sandbox.

A session is an overlay of changes on the shared world plus its journal; a snapshot is a
frozen copy of an overlay, named by its state hash. Both are kept least-recently-used first,
and the registry evicts from that end when

* there are more than ``max_sessions`` sessions or ``max_snapshots`` snapshots, or
* everything held together (the canonical JSON bytes of every overlay record, of sessions and
  snapshots, plus the journals' bytes) exceeds ``state_budget``.

One session may hold at most ``session_bytes`` of records: a write beyond that is refused
(:class:`~simulator.errors.SessionFull`), so a single client cannot push everyone else out.
The default session is never evicted, nor is the session a request is being served in.

Eviction never changes what a live session reads: the world is a pure function of the seed,
and a session's overlay is either kept whole or dropped whole. A name that was evicted is
remembered (up to ``tombstones`` names), and using it raises
:class:`~simulator.errors.SessionGone` (HTTP 410) instead of quietly starting afresh;
resetting, restoring into or deleting that session clears the mark.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Literal

from simulator.errors import SessionGone, UnknownSnapshot
from simulator.messages import DEFAULT_SESSION

from .journal import DEFAULT_BODY_LIMIT, DEFAULT_JOURNAL_LIMIT, Journal
from .store import Session

MiB = 1024 * 1024
Kind = Literal["session", "snapshot"]


@dataclass(frozen=True, slots=True)
class Limits:
    """How much state one simulator may hold; None means unbounded. Each field is one
    ``toolgrad sim serve`` flag (``--max-sessions``, ...) and one ``limits:`` key of env.yaml."""

    max_sessions: int | None = 10_000
    max_snapshots: int | None = 10_000
    state_budget: int | None = 64 * MiB  # bytes, sessions and snapshots together
    session_bytes: int | None = 8 * MiB  # record bytes one session may hold
    journal: int = DEFAULT_JOURNAL_LIMIT  # entries kept per session
    journal_body: int = DEFAULT_BODY_LIMIT  # bytes kept of each body in the journal
    tombstones: int = 100_000  # evicted names remembered (answered 410)

    @classmethod
    def unbounded(cls) -> Limits:
        """For library use (the generator, the certifier): the caller drops what it no longer
        needs, and a live session must never disappear under it."""
        return cls(max_sessions=None, max_snapshots=None, state_budget=None, session_bytes=None)

    def with_values(self, **values: int | None) -> Limits:
        """A copy with the given fields replaced (None values are left as they are)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


class _Slot:
    __slots__ = ("cost", "owner", "tick", "value")

    def __init__(self, value: Session, cost: int, tick: int) -> None:
        self.value, self.cost, self.tick = value, cost, tick
        self.owner: frozenset[str] = frozenset()  # digests of the credentials that claimed it


class NotOwner(Exception):
    """A client whose credentials share nothing with those that claimed the session."""


class SessionRegistry:
    """Sessions and snapshots by name, least recently used first. Not thread-safe."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._sessions: OrderedDict[str, _Slot] = OrderedDict()
        self._snapshots: OrderedDict[str, _Slot] = OrderedDict()
        self._gone: OrderedDict[tuple[Kind, str], None] = OrderedDict()
        self._tick = 0
        self.held_bytes = 0
        self.evicted: dict[Kind, int] = {"session": 0, "snapshot": 0}

    # -- sessions -------------------------------------------------------------------------

    def get(self, name: str) -> Session:
        """The live session ``name``, created on first use; :class:`SessionGone` if evicted."""
        slot = self._sessions.get(name)
        if slot is not None:
            self._sessions.move_to_end(name)
            self._tick += 1
            slot.tick = self._tick
            return slot.value
        if ("session", name) in self._gone:
            raise SessionGone("session", name)
        return self._put_session(name, self.new_session())

    def peek(self, name: str) -> Session | None:
        """The live session without touching its recency (None when there is none)."""
        slot = self._sessions.get(name)
        return slot.value if slot is not None else None

    def new_session(self) -> Session:
        return Session(Journal(self.limits.journal, self.limits.journal_body), self.limits.session_bytes)

    def reset(self, name: str) -> Session:
        """A fresh session under ``name`` (also when it had been evicted)."""
        self.drop(name)
        return self._put_session(name, self.new_session())

    def drop(self, name: str) -> bool:
        """Forget the session and any eviction mark; True when it was live."""
        return self._forget("session", self._sessions, name)

    def account(self, name: str) -> None:
        """Re-measure ``name`` after a request changed it, then evict others while over budget."""
        slot = self._sessions.get(name)
        if slot is None:
            return
        session = slot.value
        cost = session.record_bytes + session.journal.nbytes
        self.held_bytes += cost - slot.cost
        slot.cost = cost
        budget = self.limits.state_budget
        if budget is not None and self.held_bytes > budget:
            self._shrink(budget, keep=name)

    def claim(self, name: str, principal: frozenset[str]) -> None:
        """Record ``principal`` (digests of a request's valid credentials, under enforced auth)
        as the owner of the live session ``name`` unless it has one: the first client that used
        a session with credentials owns it."""
        slot = self._sessions.get(name)
        if slot is not None and principal and not slot.owner:
            slot.owner = principal

    def check_owner(self, name: str, principal: frozenset[str]) -> None:
        """:class:`NotOwner` unless ``principal`` shares a credential with the session's owner
        (an unowned session is claimed by it). For the control API: who may read a session's
        journal and state, or reset it, without the admin token."""
        self.claim(name, principal)
        slot = self._sessions.get(name)
        if slot is not None and slot.owner and slot.owner.isdisjoint(principal):
            raise NotOwner(name)

    def names(self) -> list[str]:
        """Live session names, least recently used first."""
        return list(self._sessions)

    # -- snapshots ------------------------------------------------------------------------

    def snapshot(self, name: str) -> str:
        """Store the session's state; its id is the state hash (content-addressed)."""
        session = self.get(name)
        snap_id = session.state_hash()
        slot = self._snapshots.get(snap_id)
        self._tick += 1
        if slot is not None:
            self._snapshots.move_to_end(snap_id)
            slot.tick = self._tick
            return snap_id
        self._gone.pop(("snapshot", snap_id), None)
        copy = session.clone()
        self._snapshots[snap_id] = _Slot(copy, copy.record_bytes, self._tick)
        self.held_bytes += copy.record_bytes
        self._enforce_count(self._snapshots, "snapshot", self.limits.max_snapshots, keep=snap_id)
        if self.limits.state_budget is not None and self.held_bytes > self.limits.state_budget:
            self._shrink(self.limits.state_budget, keep=name, keep_snapshot=snap_id)
        return snap_id

    def restore(self, snapshot_id: str, name: str) -> None:
        """Replace the session's state by a stored snapshot: :class:`UnknownSnapshot` for an unknown
        id, :class:`SessionGone` for an evicted one. Restoring revives an evicted session."""
        slot = self._snapshots.get(snapshot_id)
        if slot is None:
            if ("snapshot", snapshot_id) in self._gone:
                raise SessionGone("snapshot", snapshot_id)
            raise UnknownSnapshot(snapshot_id)
        self._snapshots.move_to_end(snapshot_id)
        self._gone.pop(("session", name), None)
        self.get(name).restore_from(slot.value)
        self.account(name)

    def delete_snapshot(self, snapshot_id: str) -> bool:
        """Forget a snapshot (and any eviction mark); True when it was held."""
        return self._forget("snapshot", self._snapshots, snapshot_id)

    def snapshot_ids(self) -> list[str]:
        return list(self._snapshots)

    def has_snapshot(self, snapshot_id: str) -> bool:
        """Whether ``snapshot_id`` is held now (not evicted, not deleted)."""
        return snapshot_id in self._snapshots

    def clear(self, *, snapshots_only: bool = False) -> None:
        """Drop snapshots (and, unless ``snapshots_only``, sessions) without eviction marks."""
        for _, slot in self._snapshots.items():
            self.held_bytes -= slot.cost
        self._snapshots.clear()
        if not snapshots_only:
            self._sessions.clear()
            self._gone.clear()
            self.held_bytes = 0

    def usage(self) -> dict[str, Any]:
        """What is held against which limit (for ``GET /_sim/usage`` and the soak benchmark)."""
        return {
            "sessions": len(self._sessions), "snapshots": len(self._snapshots),
            "held_bytes": self.held_bytes, "evicted_sessions": self.evicted["session"],
            "evicted_snapshots": self.evicted["snapshot"], "remembered_evictions": len(self._gone),
            "limits": {
                "max_sessions": self.limits.max_sessions, "max_snapshots": self.limits.max_snapshots,
                "state_budget": self.limits.state_budget, "session_bytes": self.limits.session_bytes,
                "journal": self.limits.journal, "journal_body": self.limits.journal_body,
                "tombstones": self.limits.tombstones,
            },
        }

    # -- eviction -------------------------------------------------------------------------

    def _forget(self, kind: Kind, table: OrderedDict[str, _Slot], name: str) -> bool:
        """Remove ``name`` from ``table`` and its eviction mark; True when it was held."""
        self._gone.pop((kind, name), None)
        slot = table.pop(name, None)
        if slot is None:
            return False
        self.held_bytes -= slot.cost
        return True

    def _put_session(self, name: str, session: Session) -> Session:
        self._tick += 1
        self._sessions[name] = _Slot(session, 0, self._tick)
        self._enforce_count(self._sessions, "session", self.limits.max_sessions, keep=name)
        return session

    def _enforce_count(self, table: OrderedDict[str, _Slot], kind: Kind, limit: int | None, keep: str) -> None:
        while limit is not None and len(table) > limit:
            victim = self._oldest(table, kind, keep)
            if victim is None:
                return
            self._evict(kind, victim)

    def _shrink(self, budget: int, keep: str, keep_snapshot: str | None = None) -> None:
        """Evict the least recently used session or snapshot until within ``budget``."""
        while self.held_bytes > budget:
            session = self._oldest(self._sessions, "session", keep)
            snapshot = self._oldest(self._snapshots, "snapshot", keep_snapshot)
            if session is None and snapshot is None:
                return
            if snapshot is None or (session is not None and
                                    self._sessions[session].tick < self._snapshots[snapshot].tick):
                self._evict("session", session)  # type: ignore[arg-type]
            else:
                self._evict("snapshot", snapshot)

    @staticmethod
    def _oldest(table: OrderedDict[str, _Slot], kind: Kind, keep: str | None) -> str | None:
        for name in table:
            if name != keep and not (kind == "session" and name == DEFAULT_SESSION):
                return name
        return None

    def _evict(self, kind: Kind, name: str) -> None:
        table = self._sessions if kind == "session" else self._snapshots
        slot = table.pop(name)
        self.held_bytes -= slot.cost
        self.evicted[kind] += 1
        self._gone[(kind, name)] = None
        while len(self._gone) > self.limits.tombstones:
            self._gone.popitem(last=False)

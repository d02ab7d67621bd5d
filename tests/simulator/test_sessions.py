"""The session registry and the journal ring: what is kept, what is evicted, what it costs."""

from __future__ import annotations

import pytest

from simulator.environments.environment import load_environment
from simulator.errors import SessionGone
from simulator.messages import SimRequest
from simulator.service.simulator import Simulator
from simulator.state.journal import Journal
from simulator.state.sessions import Limits, SessionRegistry

JSON = (("content-type", "application/json"),)


def post_pet(sim: Simulator, session: str, name: str = "Rex") -> int:
    body = b'{"name": "%s", "photoUrls": []}' % name.encode()
    return sim.handle(SimRequest("POST", "/pet", headers=JSON, body=body), session).status


def test_state_budget_evicts_least_recently_used_first() -> None:
    sim = Simulator(load_environment("petstore"), limits=Limits(state_budget=4_000, journal=2))
    for i in range(40):
        assert post_pet(sim, f"s{i}") == 200
    usage = sim.registry.usage()
    assert usage["held_bytes"] <= 4_000 and usage["evicted_sessions"] > 0
    kept = sim.registry.names()
    assert kept[-1] == "s39", "the session just served is never evicted"
    assert "s0" not in kept and all(f"s{i}" in kept for i in range(40 - len(kept) + 1, 40))
    with pytest.raises(SessionGone):
        sim.session("s0")


def test_the_default_session_is_never_evicted() -> None:
    sim = Simulator(load_environment("petstore"), limits=Limits(max_sessions=2))
    post_pet(sim, "default")
    for i in range(5):
        post_pet(sim, f"s{i}")
    assert "default" in sim.registry.names()
    assert sim.session("default").writes == 1


def test_held_bytes_return_to_zero_when_everything_is_dropped() -> None:
    registry = SessionRegistry(Limits(max_snapshots=1))
    sim = Simulator(load_environment("petstore"))
    sim.registry = registry
    for name in ("a", "b"):
        post_pet(sim, name)
        registry.snapshot(name)
    assert registry.held_bytes > 0
    for name in registry.names():
        registry.drop(name)
    for snap in registry.snapshot_ids():
        registry.delete_snapshot(snap)
    assert registry.held_bytes == 0


def test_eviction_marks_are_bounded() -> None:
    registry = SessionRegistry(Limits(max_sessions=1, tombstones=3))
    for i in range(10):
        registry.get(f"s{i}")
    assert registry.usage()["remembered_evictions"] == 3
    with pytest.raises(SessionGone):
        registry.get("s8")
    registry.get("s0")  # forgotten long ago: a fresh session, as documented


def test_the_journal_ring_keeps_the_newest_entries_and_counts_bytes() -> None:
    journal = Journal(limit=3, body_limit=10)
    for i in range(5):
        journal.record("POST", "/x", (("q", str(i)),), b"b" * 50, 200, "é".encode() * 20, f"h{i}")
    entries = journal.entries()
    assert [e["seq"] for e in entries] == [2, 3, 4]
    assert entries[0]["body"] == "b" * 10 and entries[0]["body_bytes"] == 50
    assert entries[0]["response"] == "é" * 5, "cut on a character boundary"
    one = Journal(limit=1, body_limit=10)
    one.record("POST", "/x", (("q", "0"),), b"b" * 50, 200, "é".encode() * 20, "h0")
    assert journal.nbytes == 3 * one.nbytes, "what the ring holds is what it counts"
    page = journal.page(after=-1, limit=2)
    assert (page.first_seq, page.dropped, page.next_after) == (2, 2, 3)


def test_a_zero_limit_journal_keeps_nothing() -> None:
    journal = Journal(limit=0)
    journal.record("GET", "/", (), b"", 200, b"{}", "h")
    assert journal.entries() == [] and journal.nbytes == 0 and journal.seq == 1


def test_the_world_memo_forgets_and_recomputes_the_same_records() -> None:
    small, reference = Simulator(load_environment("petstore")), Simulator(load_environment("petstore"))
    for memo in (small.world._base, small.world._positions, small.world._open):
        memo.limit = 1  # type: ignore[attr-defined]
    paths = ["/pet/1", "/user/user1", "/store/order/1", "/pet/findByStatus", "/pet/2", "/user/user1"]
    for path in paths * 2:
        query = (("status", "available"),) if path.endswith("findByStatus") else ()
        got = [sim.handle(SimRequest("GET", path, query=query)).body for sim in (small, reference)]
        assert got[0] == got[1], path
    assert len(small.world._base) == 1


def test_journal_entries_cost_about_their_size() -> None:
    """A journal entry must cost about its size (orjson's output, for one, keeps a 4 KB buffer)."""
    import tracemalloc

    journal = Journal(limit=1000)
    tracemalloc.start()
    try:
        for i in range(1000):
            journal.record("GET", f"/pet/{i}", (), b"", 200, b'{"id": 1, "name": "doggie"}', "h" * 64)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 3 * journal.nbytes, (held, journal.nbytes)

"""The one conformance suite every :class:`~simulator.sandboxes.protocol.Sandbox` runs.

Like inspect_ai's sandbox self-check: an implementation is held to the contract by subclassing
:class:`SandboxContract` as ``Test<Implementation>`` and providing two class-scoped fixtures,

* ``sandbox``: petstore with seed 0 and the default limits, and
* ``bounded_sandbox``: the same with at most :data:`BOUNDED_SESSIONS` sessions (so the suite
  can watch one being evicted).

Each test works in sessions of its own (the ``session`` fixture), so one running server serves
the whole class. Bytes are compared with an in-process sandbox of the same environment and
seed: every implementation must answer what the simulator itself answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from simulator.environments.environment import load_environment
from simulator.errors import SessionGone, UnknownSnapshot
from simulator.sandboxes.inprocess import InProcessSandbox
from simulator.sandboxes.protocol import Sandbox, SimRequest
from simulator.state.sessions import Limits

ENV = "petstore"
SEED = 0
BOUNDED_SESSIONS = 2
JSON = (("content-type", "application/json"),)
# A fixed history: create, read, list, delete, read again (404).
PETSTORE_SEQUENCE = [
    SimRequest(
        "POST", "/pet", headers=JSON, body=b'{"id": 4242, "name": "rex", "photoUrls": [], "status": "sold"}'
    ),
    SimRequest("GET", "/pet/4242"),
    SimRequest("GET", "/pet/findByStatus", query=(("status", "sold"),)),
    SimRequest("DELETE", "/pet/4242"),
    SimRequest("GET", "/pet/4242"),
]
CREATE, READ = PETSTORE_SEQUENCE[0], PETSTORE_SEQUENCE[1]

Exchange = tuple[int, tuple[tuple[str, str], ...], bytes]


def run(sandbox: Sandbox, sequence: Sequence[SimRequest], session: str) -> list[Exchange]:
    """Each response of ``sequence`` in ``session``, as (status, headers, body)."""
    out = []
    for request in sequence:
        response = sandbox.request(request, session=session)
        out.append((response.status, response.headers, response.body))
    return out


def in_process(limits: Limits | None = None) -> Iterator[InProcessSandbox]:
    """An in-process sandbox of the contract's environment, closed when the fixture ends."""
    box = InProcessSandbox(load_environment(ENV, seed=SEED), limits=limits)
    yield box
    box.close()


class SandboxContract:
    """The contract of :class:`~simulator.sandboxes.protocol.Sandbox`, one test per promise.

    Server-backed subclasses start their services under ``service_state_dir``."""

    @pytest.fixture(scope="class")
    @classmethod
    def reference(cls) -> Iterator[InProcessSandbox]:
        yield from in_process()

    @pytest.fixture(scope="class")
    @classmethod
    def service_state_dir(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
        """A private ledger and log folder for the services a class starts: a developer's own
        `toolgrad sim up` services are never touched."""
        with pytest.MonkeyPatch.context() as patch:
            state = tmp_path_factory.mktemp("sim-state")
            patch.setenv("TOOLGRAD_STATE_DIR", str(state))
            yield state

    @pytest.fixture
    def session(self, request: pytest.FixtureRequest, sandbox: Sandbox) -> Iterator[str]:
        """A session name no other test uses, dropped afterwards."""
        name = f"contract/{request.node.name}"
        yield name
        sandbox.drop(name)

    def test_implements_the_whole_protocol(self, sandbox: Sandbox) -> None:
        assert isinstance(sandbox, Sandbox)  # runtime_checkable: every method, drop and forget_snapshots too
        assert sandbox.name == ENV

    def test_fingerprint_is_the_simulators(self, sandbox: Sandbox, reference: InProcessSandbox) -> None:
        assert sandbox.fingerprint() == reference.fingerprint()
        assert sandbox.fingerprint()["seed"] == SEED

    def test_same_requests_give_the_same_bytes(self, sandbox: Sandbox, reference: InProcessSandbox,
                                               session: str) -> None:
        first = run(sandbox, PETSTORE_SEQUENCE, session)
        sandbox.reset(session)
        again = run(sandbox, PETSTORE_SEQUENCE, session)
        expected = run(reference, PETSTORE_SEQUENCE, session)
        reference.drop(session)
        assert first == again == expected
        assert [status for status, _, _ in first] == [200, 200, 200, 200, 404]

    def test_state_hash_is_stable_and_reads_leave_it(self, sandbox: Sandbox, reference: InProcessSandbox,
                                                     session: str) -> None:
        fresh = sandbox.state_hash(session)
        assert fresh == sandbox.state_hash(session) == reference.state_hash(f"{session}/unused")
        sandbox.request(READ, session=session)  # a 404 read of a pet that is not there yet
        assert sandbox.state_hash(session) == fresh
        sandbox.request(CREATE, session=session)
        written = sandbox.state_hash(session)
        assert written != fresh
        sandbox.request(READ, session=session)
        assert sandbox.state_hash(session) == written
        reference.request(CREATE, session=session)
        assert written == reference.state_hash(session)
        reference.drop(session)

    def test_reset_returns_a_session_to_the_seed(self, sandbox: Sandbox, session: str) -> None:
        fresh = sandbox.state_hash(session)
        sandbox.request(CREATE, session=session)
        sandbox.reset(session)
        assert sandbox.state_hash(session) == fresh
        assert sandbox.journal(session) == []
        assert sandbox.request(READ, session=session).status == 404

    def test_snapshot_is_the_state_hash_and_restore_goes_back(self, sandbox: Sandbox, session: str) -> None:
        sandbox.request(CREATE, session=session)
        before = sandbox.state_hash(session)
        snapshot = sandbox.snapshot(session)
        assert snapshot == before
        sandbox.request(PETSTORE_SEQUENCE[3], session=session)  # delete the pet
        assert sandbox.state_hash(session) != before
        sandbox.restore(snapshot, session)
        assert sandbox.state_hash(session) == before
        assert sandbox.request(READ, session=session).json()["name"] == "rex"

    def test_fork_copies_a_session_and_the_copies_diverge_independently(self, sandbox: Sandbox,
                                                                         session: str) -> None:
        fork = f"{session}/fork"
        try:
            sandbox.request(CREATE, session=session)
            sandbox.restore(sandbox.snapshot(session), fork)
            assert sandbox.state_hash(fork) == sandbox.state_hash(session)
            assert sandbox.request(READ, session=fork).status == 200
            sandbox.request(PETSTORE_SEQUENCE[3], session=fork)
            assert sandbox.request(READ, session=fork).status == 404
            assert sandbox.request(READ, session=session).status == 200
        finally:
            sandbox.drop(fork)

    def test_drop_forgets_a_session(self, sandbox: Sandbox, session: str) -> None:
        fresh = sandbox.state_hash(session)
        sandbox.request(CREATE, session=session)
        sandbox.drop(session)
        assert sandbox.journal(session) == []
        assert sandbox.state_hash(session) == fresh
        sandbox.drop(f"{session}/never-used")  # dropping what does not exist is not an error

    def test_forget_snapshots_keeps_the_forks(self, sandbox: Sandbox, session: str) -> None:
        fork = f"{session}/fork"
        try:
            sandbox.request(CREATE, session=session)
            sandbox.restore(sandbox.snapshot(session), fork)
            sandbox.forget_snapshots()
            assert sandbox.request(READ, session=fork).status == 200
            again = sandbox.snapshot(fork)  # snapshots still work afterwards
            sandbox.restore(again, fork)
            assert sandbox.state_hash(fork) == again
        finally:
            sandbox.drop(fork)

    def test_unknown_snapshot_is_reported(self, sandbox: Sandbox, session: str) -> None:
        missing = "0" * 64  # a well-formed id no state hashes to
        with pytest.raises(UnknownSnapshot, match="no snapshot") as info:
            sandbox.restore(missing, session)
        assert isinstance(info.value, KeyError)

    def test_journal_lists_the_exchanges_in_order(self, sandbox: Sandbox, reference: InProcessSandbox,
                                                  session: str) -> None:
        responses = run(sandbox, PETSTORE_SEQUENCE, session)
        entries = sandbox.journal(session)
        assert [(e["method"], e["status"]) for e in entries] == [
            (r.method, status) for r, (status, _, _) in zip(PETSTORE_SEQUENCE, responses, strict=True)
        ]
        run(reference, PETSTORE_SEQUENCE, session)
        assert entries == reference.journal(session)
        reference.drop(session)

    def test_an_evicted_session_is_reported_as_such(self, bounded_sandbox: Sandbox) -> None:
        names = [f"contract/evict/{i}" for i in range(BOUNDED_SESSIONS + 1)]
        fresh = bounded_sandbox.state_hash(names[0])
        for name in names:  # the last one pushes out the least recently used, the first
            assert bounded_sandbox.request(CREATE, session=name).status == 200
        gone = bounded_sandbox.request(READ, session=names[0])
        assert gone.status == 410 and "evicted" in gone.json()["detail"]
        with pytest.raises(SessionGone, match="evicted"):
            bounded_sandbox.state_hash(names[0])
        assert bounded_sandbox.request(READ, session=names[-1]).status == 200  # the newest lives on
        bounded_sandbox.reset(names[0])  # reset revives it, fresh from the seed
        assert bounded_sandbox.state_hash(names[0]) == fresh
        for name in names:
            bounded_sandbox.drop(name)

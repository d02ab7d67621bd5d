"""One interface over every way to run a simulated environment.

The generator, the certifier and the evaluator talk to a :class:`Sandbox` and never care
whether it is the in-process simulator (no sockets), a local uvicorn process or a container:
all of them return byte-identical responses for the same request history.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from simulator.messages import DEFAULT_SESSION, SimRequest, SimResponse


@runtime_checkable
class Sandbox(Protocol):
    """A running environment: one spec, one seed, many isolated sessions.

    Every implementation (in-process, a local server process, a container) keeps this contract,
    checked by one conformance suite (``tests/support/sandbox_contract.py``):

    * a session is created from the seed on first use; the same requests in a fresh session
      give byte-identical responses, in any implementation, process or run;
    * ``state_hash`` depends on the session's state only (reads never change it);
    * ``snapshot`` returns the state hash, and ``restore`` of it into any session is a fork;
    * a session the sandbox evicted to bound its memory is never recreated silently: requests
      in it answer HTTP 410 and the control methods raise :class:`~simulator.errors.SessionGone`
      until it is reset, restored into or dropped.
    """

    name: str

    def fingerprint(self) -> dict[str, Any]:
        """spec sha256, seed, simulator and Faker versions: what a response depends on."""
        ...

    def request(self, request: SimRequest, *, session: str = DEFAULT_SESSION) -> SimResponse:
        """Serve one request of the simulated API in ``session``; never raises for a bad request
        (it gets a 4xx problem response), only when the sandbox cannot be reached."""
        ...

    def state_hash(self, session: str = DEFAULT_SESSION) -> str:
        """sha256 of the canonical state of the session (created from the seed on first use)."""
        ...

    def snapshot(self, session: str = DEFAULT_SESSION) -> str:
        """Store the session's state; returns its id (the state hash: content-addressed)."""
        ...

    def restore(self, snapshot_id: str, session: str = DEFAULT_SESSION) -> None:
        """Replace the session's state by a stored snapshot (of any session: this is a fork).

        :class:`~simulator.errors.UnknownSnapshot` for an id never stored or forgotten,
        :class:`~simulator.errors.SessionGone` for one the sandbox evicted."""
        ...

    def reset(self, session: str = DEFAULT_SESSION) -> None:
        """Replace the session by a fresh one from the seed (also revives an evicted session)."""
        ...

    def drop(self, session: str) -> None:
        """Forget the session (and any eviction mark); its name starts afresh on next use.
        Dropping a session that does not exist is not an error."""
        ...

    def forget_snapshots(self) -> None:
        """Free the snapshots this sandbox object stored, as far as it may: sessions restored
        from them keep their state, and later snapshots work as before. An in-process sandbox
        forgets them all (a later ``restore`` of one raises ``UnknownSnapshot``); a server shared
        with other clients keeps them until its own limits evict them."""
        ...

    def journal(self, session: str = DEFAULT_SESSION) -> list[dict[str, Any]]:
        """The session's ordered request/response log (the entries its bounded ring still holds)."""
        ...

    def close(self) -> None:
        """Release what the sandbox holds (sessions, snapshots, connections); it is not used again."""
        ...

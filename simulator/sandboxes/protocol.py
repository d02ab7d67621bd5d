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
    """A running environment: one spec, one seed, many isolated sessions."""

    name: str

    def fingerprint(self) -> dict[str, Any]:
        """spec sha256, seed, simulator and Faker versions: what a response depends on."""
        ...

    def request(self, request: SimRequest, *, session: str = DEFAULT_SESSION) -> SimResponse: ...

    def state_hash(self, session: str = DEFAULT_SESSION) -> str:
        """sha256 of the canonical state of the session (created from the seed on first use)."""
        ...

    def snapshot(self, session: str = DEFAULT_SESSION) -> str:
        """Store the session's state; returns its id (the state hash: content-addressed)."""
        ...

    def restore(self, snapshot_id: str, session: str = DEFAULT_SESSION) -> None:
        """Replace the session's state by a stored snapshot (of any session: this is a fork)."""
        ...

    def reset(self, session: str = DEFAULT_SESSION) -> None: ...

    def journal(self, session: str = DEFAULT_SESSION) -> list[dict[str, Any]]:
        """The session's ordered request/response log."""
        ...

    def close(self) -> None: ...

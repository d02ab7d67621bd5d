"""The in-process sandbox: the simulator called directly, no sockets."""

from __future__ import annotations

from typing import Any

from simulator.environments.environment import Environment
from simulator.messages import DEFAULT_SESSION, SimRequest, SimResponse
from simulator.service.simulator import Simulator
from simulator.state.sessions import Limits


class InProcessSandbox:
    """A :class:`~simulator.sandboxes.protocol.Sandbox` backed by a :class:`Simulator` in this process.

    Sessions and snapshots are not evicted (``Limits.unbounded()``, unless ``limits`` says
    otherwise): library callers drop what they no longer need, and a live session must never
    disappear under a generator or a certifier."""

    def __init__(self, env: Environment, *, auth: str = "off", limits: Limits | None = None,
                 credentials: dict[str, tuple[str, ...]] | None = None) -> None:
        self.simulator = Simulator(env, auth=auth, limits=limits or Limits.unbounded(),
                                   credentials=credentials)
        self.name = env.name
        self.env = env

    @staticmethod
    def fingerprint_of(env: Environment, *, auth: str = "off") -> dict[str, Any]:
        """What :meth:`fingerprint` of a sandbox of ``env`` returns, without building its simulator."""
        return Simulator.fingerprint_of(env, auth)

    def fingerprint(self) -> dict[str, Any]:
        return self.simulator.fingerprint()

    def request(self, request: SimRequest, *, session: str = DEFAULT_SESSION) -> SimResponse:
        return self.simulator.handle(request, session)

    def state_hash(self, session: str = DEFAULT_SESSION) -> str:
        return self.simulator.state_hash(session)

    def snapshot(self, session: str = DEFAULT_SESSION) -> str:
        return self.simulator.snapshot(session)

    def restore(self, snapshot_id: str, session: str = DEFAULT_SESSION) -> None:
        self.simulator.restore(snapshot_id, session)

    def reset(self, session: str = DEFAULT_SESSION) -> None:
        self.simulator.reset(session)

    def drop(self, session: str) -> None:
        self.simulator.drop(session)

    def forget_snapshots(self) -> None:
        """Drop every stored snapshot: this object owns its simulator, so all of them are its own."""
        self.simulator.registry.clear(snapshots_only=True)

    def journal(self, session: str = DEFAULT_SESSION) -> list[dict[str, Any]]:
        return self.simulator.session(session).journal.entries()

    def close(self) -> None:
        self.simulator.registry.clear()

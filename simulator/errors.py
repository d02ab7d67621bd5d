"""The simulator's exceptions. One root, so callers can catch everything we raise on purpose."""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of every error the simulator raises deliberately."""


class SpecError(SimulatorError):
    """A spec (or an environment file) that cannot be loaded or served.

    Carries what a user needs to act: the file, the JSON pointer inside it, the operation
    (when one is concerned) and how to fix it. ``str()`` renders all of it on one or two lines.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str,
        pointer: str = "",
        operation_id: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.pointer = pointer
        self.operation_id = operation_id
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file + (f"#{self.pointer}" if self.pointer else "")
        text = f"{where}: {self.message}"
        if self.operation_id:
            text += f" (operation {self.operation_id})"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class UnknownEnvironmentError(SimulatorError):
    """A name that is neither a shipped environment, an environment directory nor a spec file."""


class SessionGone(SimulatorError):
    """A session or snapshot that was evicted to keep memory bounded (HTTP 410): it is never
    recreated silently, so a client learns its state is lost instead of reading the fixtures."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(
            f"{kind} {name!r} was evicted (least recently used, beyond the sandbox's limits); "
            + ("reset or delete it to start afresh" if kind == "session" else "take a new snapshot")
        )


class UnknownSnapshot(SimulatorError, KeyError):
    """A snapshot id that was never stored in this sandbox, or was forgotten (HTTP 404). A
    :class:`KeyError` too, as a lookup of an unknown id always was."""

    def __init__(self, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        super().__init__(f"no snapshot {snapshot_id!r}")

    def __str__(self) -> str:  # KeyError's own __str__ would repr the message
        return str(self.args[0])


class SessionFull(SimulatorError):
    """A write that would take a session's records beyond its byte limit (HTTP 507)."""

    def __init__(self, held: int, limit: int) -> None:
        self.held = held
        self.limit = limit
        super().__init__(
            f"the session holds {held:,} bytes of records and may hold at most {limit:,} "
            "(--session-bytes); reset it, delete records, or use another session"
        )


def install_hint(extra: str) -> str:
    """How to install one of the kit's optional extras, in a form that works before the kit is
    on an index: from a checkout of the repository."""
    return f"pip install -e '.[{extra}]' in the toolgrad-kit checkout (or: bash scripts/setup.sh {extra})"


EXIT_CODES = (
    "Exit codes: 0 done as asked; 1 it ran, but the result is not what was asked (a certificate "
    "below 100%, a model endpoint that failed mid-run, no seed that gave a sample); 2 bad input or "
    "set-up (a flag, a file, an unreachable endpoint or unknown model), caught before any work, "
    "with one `error:` line on stderr."
)

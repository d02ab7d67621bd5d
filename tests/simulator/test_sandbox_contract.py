"""The sandbox contract, run by the in-process sandbox and by a local server process.

The docker container runs the same suite in the docker tier (tests/docker/test_container_contract.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.sandboxes.backends import running_services
from simulator.sandboxes.backends.base import ignore_event, plan_requests
from simulator.sandboxes.backends.local import LocalBackend, serve_argv
from simulator.sandboxes.http import HTTPSandbox
from simulator.sandboxes.inprocess import InProcessSandbox
from simulator.state.sessions import Limits
from tests.support.sandbox_contract import (
    BOUNDED_SESSIONS,
    ENV,
    SEED,
    SandboxContract,
    in_process,
)


class TestInProcess(SandboxContract):
    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls) -> Iterator[InProcessSandbox]:
        yield from in_process()

    @pytest.fixture(scope="class")
    @classmethod
    def bounded_sandbox(cls) -> Iterator[InProcessSandbox]:
        yield from in_process(Limits(max_sessions=BOUNDED_SESSIONS))


def _bounded_argv(env: str, host: str, port: int, seed: int | None) -> list[str]:
    return [*serve_argv(env, host, port, seed), "--max-sessions", str(BOUNDED_SESSIONS)]


@pytest.mark.timeout(180)
class TestLocalProcess(SandboxContract):
    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls, service_state_dir: Path) -> Iterator[HTTPSandbox]:
        with running_services([ENV], backend="local", seed=SEED) as [handle]:
            box = HTTPSandbox(handle.base_url, handle.name, admin_token=handle.admin_token or None)
            yield box
            box.close()

    @pytest.fixture(scope="class")
    @classmethod
    def bounded_sandbox(cls, service_state_dir: Path) -> Iterator[HTTPSandbox]:
        runner = LocalBackend(argv=_bounded_argv)
        [handle] = runner.start(plan_requests([ENV], seed=SEED, port_base=None), timeout=60, on_event=ignore_event)
        try:
            box = HTTPSandbox(handle.base_url, handle.name, admin_token=handle.admin_token or None)
            yield box
            box.close()
        finally:
            runner.stop([handle], on_event=ignore_event)

"""Waiting for services to answer ``GET /_sim/health``: the one HTTP client of the backends."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from .base import HEALTH_PATH

POLL_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class PendingService:
    name: str
    base_url: str
    # None while the service may still come up; otherwise why it never will (it exited, ...)
    failure: Callable[[], str | None]


@dataclass(frozen=True, slots=True)
class HealthFailure:
    name: str
    reason: str


def probe(base_url: str, *, timeout: float = 2.0) -> bool:
    """One health check: True on a 200 from ``GET /_sim/health``."""
    # trust_env=False: a proxy set in the environment must not intercept 127.0.0.1.
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            return client.get(base_url + HEALTH_PATH).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_healthy(pending: Sequence[PendingService], *, timeout: float) -> HealthFailure | None:
    """Poll every service until all answer 200, one fails, or ``timeout`` seconds pass.

    Returns None when all are healthy, else the first failure (by the order given).
    """
    deadline = time.monotonic() + timeout
    waiting = list(pending)
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while waiting:
            still: list[PendingService] = []
            for service in waiting:
                reason = service.failure()
                if reason is not None:
                    return HealthFailure(service.name, reason)
                try:
                    ok = client.get(service.base_url + HEALTH_PATH).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if not ok:
                    still.append(service)
            waiting = still
            if not waiting:
                return None
            if time.monotonic() >= deadline:
                return HealthFailure(
                    waiting[0].name,
                    f"no healthy answer from {waiting[0].base_url}{HEALTH_PATH} within {timeout:g} s",
                )
            time.sleep(POLL_SECONDS)
    return None

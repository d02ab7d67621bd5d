"""The docker tier: skipped as a whole, with the reason, when no engine, no image or a stale image."""

from __future__ import annotations

import pytest

from tests.support.docker_tier import tier_skip_reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    docker_items = [item for item in items if item.get_closest_marker("docker")]
    if not docker_items:
        return
    reason = tier_skip_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"docker tier: {reason}")
    for item in docker_items:
        item.add_marker(skip)

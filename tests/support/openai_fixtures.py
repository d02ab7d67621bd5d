"""Pytest fixtures for the scripted OpenAI-compatible server (:mod:`tests.support.scripted_server`).

A folder's conftest.py makes them available to its tests by importing them::

    from tests.support.openai_fixtures import scripted_openai, scripted_openai_server  # noqa: F401

``scripted_openai`` is the one shared server of the session, reset before each test (empty
script, no quirks, no recorded requests), with the key the ``openai`` client insists on set.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.scripted_server import ScriptedOpenAI


@pytest.fixture(scope="session")
def scripted_openai_server() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as server:
        yield server


@pytest.fixture
def scripted_openai(scripted_openai_server: ScriptedOpenAI, monkeypatch: pytest.MonkeyPatch) -> ScriptedOpenAI:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    scripted_openai_server.reset()
    return scripted_openai_server

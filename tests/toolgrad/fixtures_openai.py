"""Pytest fixtures for the scripted OpenAI-compatible server (see scripted_server.py).

Test modules in this folder use them without a plugin, by binding them at module level::

    import fixtures_openai

    scripted_openai_server = fixtures_openai.scripted_openai_server
    scripted_openai = fixtures_openai.scripted_openai

(pytest's default "prepend" import mode puts this folder on ``sys.path``.) ``scripted_openai`` is
the one shared server, reset before each test: empty script, no quirks, no recorded requests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scripted_server import ScriptedOpenAI


@pytest.fixture(scope="session")
def scripted_openai_server() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as server:
        yield server


@pytest.fixture
def scripted_openai(scripted_openai_server: ScriptedOpenAI) -> ScriptedOpenAI:
    scripted_openai_server.reset()
    return scripted_openai_server

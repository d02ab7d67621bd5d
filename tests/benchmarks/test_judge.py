"""``certify --judge``: a model's verdict per sample through the real ``openai`` client against the
scripted server on 127.0.0.1, recorded in the cache and replayed without a server to the same
certificate bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmarks.certify.certificate import certificate_bytes, certify_file
from benchmarks.certify.replay import read_dataset
from benchmarks.cli.app import app
from tests.support import scripted_server as scripted
from toolgrad.backends.cache import ResponseCache
from toolgrad.backends.openai import OpenAIChat

MODEL = "judge-model"


@pytest.fixture(scope="module")
def judge_server() -> Iterator[Any]:
    with scripted.ScriptedOpenAI() as server:
        yield server


def rejecting(query: str) -> Any:
    """A judge that finds every sample resolved except the one whose query is ``query``."""

    def handle(request: dict[str, Any]) -> Any:
        user = request["messages"][-1]["content"]
        assert "Calls and their results:" in user and "Final answer:" in user
        resolved = f"Request:\n{query}\n" not in user
        return scripted.json_reply({"resolved": resolved, "rationale": "ok" if resolved else "the answer is off"})

    return handle


def chat(server: Any, cache: Path, *, replay_only: bool = False, base_url: str = "") -> OpenAIChat:
    return OpenAIChat(MODEL, base_url or server.base_url, api_key="sk-test", cache=ResponseCache(cache),
                      replay_only=replay_only, sleep=lambda s: None)


def test_the_judge_is_a_check_of_its_own_and_replays_without_a_server(
        dataset_path: Path, tmp_path: Path, judge_server: Any) -> None:
    samples = list(read_dataset(dataset_path).samples())
    judge_server.reset()
    judge_server.script(rejecting(samples[1].query))
    recorded = certify_file(dataset_path, judge=chat(judge_server, tmp_path / "cache"))
    assert len(judge_server.requests) == len(samples), "one judge call per sample"
    assert recorded.judge == MODEL and recorded.checks["judge"] == len(samples) - 1
    assert [s.line for s in recorded.samples if not s.ok] == [2]
    verdict = recorded.samples[1].checks["judge"]
    assert (verdict.ok, verdict.reason) == (False, "the answer is off") and isinstance(verdict.value, str)
    assert all(c.ok for name, c in recorded.samples[1].checks.items() if name != "judge")

    # replayed from the cache, against no server at all: the same certificate, to the byte
    dead = "http://127.0.0.1:9/v1"
    replayed = certify_file(dataset_path, judge=chat(judge_server, tmp_path / "cache", replay_only=True, base_url=dead))
    assert certificate_bytes(replayed) == certificate_bytes(recorded)
    assert len(judge_server.requests) == len(samples), "the replay sent nothing"
    # without a judge the deterministic checks stand alone
    assert "judge" not in certify_file(dataset_path).checks


def test_cli_judge_records_replays_and_a_cache_miss_exits_2(
        dataset_path: Path, tmp_path: Path, judge_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    samples = list(read_dataset(dataset_path).samples())
    judge_server.reset()
    judge_server.script(rejecting(samples[0].query))
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    cache = tmp_path / "judge-cache"
    result = CliRunner().invoke(app, ["certify", str(dataset_path), "--judge", MODEL, "--base-url",
                                      judge_server.base_url, "--cache", str(cache), "-o", str(first)])
    assert result.exit_code == 1, result.output  # one sample judged unresolved: below 100%
    assert "judge: the answer is off" in result.stdout and "judge 7" in result.stdout
    assert json.loads(first.read_text())["judge"] == MODEL
    result = CliRunner().invoke(app, ["certify", str(dataset_path), "--judge", MODEL, "--cache", str(cache),
                                      "--replay-only", "-o", str(second)])
    assert result.exit_code == 1 and second.read_bytes() == first.read_bytes()
    # the command writes from its journal what the library builds in memory
    assert first.read_bytes() == certificate_bytes(
        certify_file(dataset_path, judge=chat(judge_server, cache, replay_only=True)))
    # bad input: a replay-only run with an empty cache has nothing to replay
    result = CliRunner().invoke(app, ["certify", str(dataset_path), "--judge", MODEL, "--cache",
                                      str(tmp_path / "empty"), "--replay-only", "-o", str(second)])
    assert result.exit_code == 2 and "cache miss" in result.output and "Traceback" not in result.output

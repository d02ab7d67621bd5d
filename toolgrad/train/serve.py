"""Serving a GGUF file: llama-cpp-python's OpenAI-compatible server on 127.0.0.1, launched through
:mod:`.llama_server`, with the chat format ``toolgrad train`` teaches (``toolgrad-tools``, the
default) or the floor's stock ``chatml-function-calling``, so ``toolgrad eval`` runs on the
fine-tuned model unchanged."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from toolgrad.settings import ToolgradError

from .chat_format import FORMAT_NAME

CHAT_FORMATS = (FORMAT_NAME, "chatml-function-calling")  # what .llama_server registers
CONTEXT_TOKENS = 8192  # crm's tool lists need more than the server's default 2048


def server_command(model: Path, alias: str, port: int, *, threads: int = 1, n_ctx: int = CONTEXT_TOKENS,
                   chat_format: str = FORMAT_NAME) -> list[str]:
    return [sys.executable, "-m", "toolgrad.train.llama_server", "--model", str(model), "--model_alias", alias,
            "--chat_format", chat_format, "--n_ctx", str(n_ctx), "--n_threads", str(threads),
            "--n_threads_batch", str(threads), "--logits_all", "False", "--host", "127.0.0.1", "--port", str(port)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(model: Path, alias: str, log_file: Path, *, threads: int = 1, n_ctx: int = CONTEXT_TOKENS,
                   chat_format: str = FORMAT_NAME, startup_timeout: float = 180.0) -> Iterator[str]:
    """Start the server, wait until ``/v1/models`` answers, yield its base URL (``.../v1``), and
    stop it (its whole process group) on exit."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    with log_file.open("wb") as log:
        process = subprocess.Popen(server_command(model, alias, port, threads=threads, n_ctx=n_ctx, chat_format=chat_format),
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise ToolgradError(f"the model server exited with code {process.returncode}; see {log_file}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/models", timeout=5.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise ToolgradError(f"the model server did not answer within {startup_timeout:.0f} s; see {log_file}")
            time.sleep(0.5)
        yield base_url
    finally:
        stop_server(process)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own session: SIGTERM to its process group, SIGKILL after 15 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)

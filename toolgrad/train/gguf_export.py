"""From a LoRA adapter to a GGUF file llama.cpp serves: merge the adapter into the base
weights (peft), then run llama.cpp's own converter, ``convert_hf_to_gguf.py``.

The converter is not on PyPI by itself: it ships in llama-cpp-python's source distribution
under ``vendor/llama.cpp`` (with its ``conversion`` package and a matching ``gguf-py``).
``.ci/llm-setup.sh`` unpacks that folder to ``~/.cache/toolgrad-kit/llama.cpp-<version>``;
``--converter`` or ``TOOLGRAD_LLAMA_CPP`` points elsewhere. It runs in this interpreter, so
torch, transformers, numpy and sentencepiece of the ``[train]`` extra serve it too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from toolgrad.settings import ToolgradError

from .chat_format import CHAT_TEMPLATE

LLAMA_CPP_VERSION = "0.3.36"
CONVERTER_ENV = "TOOLGRAD_LLAMA_CPP"
CONVERTER = "convert_hf_to_gguf.py"


def default_converter_folder() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "toolgrad-kit" / f"llama.cpp-{LLAMA_CPP_VERSION}"


def find_converter(folder: str | None = None) -> Path:
    """The converter script: in ``folder``, else ``$TOOLGRAD_LLAMA_CPP``, else the cache."""
    root = Path(folder or os.environ.get(CONVERTER_ENV) or default_converter_folder())
    script = root / CONVERTER
    if not script.is_file():
        raise ToolgradError(
            f"llama.cpp's {CONVERTER} is not in {root}: run `bash .ci/llm-setup.sh` (it unpacks it from "
            f"llama-cpp-python=={LLAMA_CPP_VERSION}'s source distribution), or point --converter / "
            f"{CONVERTER_ENV} at a llama.cpp checkout")
    return script


def merge_adapter(base_folder: Path, adapter: Path, merged: Path) -> Path:
    """Base weights + LoRA deltas -> a plain HF model folder (safetensors, float32)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(base_folder), dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    partial = merged.with_name(merged.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial))
    tokenizer = AutoTokenizer.from_pretrained(str(adapter))
    tokenizer.chat_template = CHAT_TEMPLATE  # the GGUF then says how it was trained to talk
    tokenizer.save_pretrained(str(partial))
    shutil.rmtree(merged, ignore_errors=True)
    partial.rename(merged)
    return merged


def convert_to_gguf(model_folder: Path, output: Path, *, outtype: str = "q8_0", converter: str | None = None) -> Path:
    """``convert_hf_to_gguf.py MODEL --outfile OUTPUT --outtype OUTTYPE``; the file appears only
    when the converter succeeded (it writes a temporary name first)."""
    script = find_converter(converter)
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    result = subprocess.run([sys.executable, str(script), str(model_folder), "--outfile", str(partial),
                             "--outtype", outtype], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not partial.is_file():
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-15:])
        raise ToolgradError(f"{CONVERTER} failed on {model_folder} (exit {result.returncode}):\n{tail}")
    partial.rename(output)
    return output

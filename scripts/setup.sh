#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install the kit into it. Idempotent; quiet when up to date.
# Usage: scripts/setup.sh [extra ...]   e.g. scripts/setup.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
  "$PY" -m venv .venv
fi
extras=""
[ $# -gt 0 ] && extras="[$(IFS=,; echo "$*")]"
stamp=".venv/.installed$(echo "$extras" | tr -c 'a-z0-9' '_')"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
  touch "$stamp"
fi

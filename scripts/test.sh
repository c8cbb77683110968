#!/usr/bin/env bash
# The project's test command (README and .ci/run): lint, type-check, then the full test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SAESTEER_VENV:-$root/.venv}"
cd "$root"
"$venv/bin/ruff" check saesteer tests benchmarks
"$venv/bin/mypy"
"$venv/bin/python" -m pytest -q "$@"

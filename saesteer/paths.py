"""Where saesteer keeps caches (converted models, assembled GGUF files)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """Return (and create) a directory under the saesteer cache.

    The root is ``$SAESTEER_CACHE`` if set, else ``$XDG_CACHE_HOME/saesteer`` or ``~/.cache/saesteer``.
    """
    root = os.environ.get("SAESTEER_CACHE")
    if root is None:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "saesteer") if xdg else str(Path.home() / ".cache" / "saesteer")
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path

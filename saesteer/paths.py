"""Where saesteer keeps caches (converted models, assembled GGUF files)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """Return (and create) a directory under the saesteer cache.

    The root is ``$SAESTEER_CACHE`` if set and not empty, else ``$XDG_CACHE_HOME/saesteer`` or
    ``~/.cache/saesteer`` (an empty variable would otherwise put the cache in the working directory).
    """
    root = os.environ.get("SAESTEER_CACHE") or None
    if root is None:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "saesteer") if xdg else str(Path.home() / ".cache" / "saesteer")
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path

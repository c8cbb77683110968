"""Shared CLI helpers: argument parsing of lists, the ``--backend`` flag, and the rich console."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

console = Console()


def float_list(text: str) -> list[float]:
    """Parse "-4,0,4" into floats."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def int_list(text: str) -> list[int]:
    """Parse "6,8,10" into ints."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


BACKEND_HELP = (
    "generation backend: hf (transformers, the default) or vllm (a vLLM engine: the vllm extra, "
    "scripts/install_vllm.sh on CPU; there set VLLM_CPU_KVCACHE_SPACE=1 (GiB) on a small machine)"
)


def add_backend_flag(parser: argparse.ArgumentParser, *, default: str | None = "hf", note: str = "") -> None:
    """``--backend {hf,vllm}`` (``note`` is appended to its help)."""
    from saesteer.backends import BACKENDS

    parser.add_argument("--backend", choices=BACKENDS, default=default, help=BACKEND_HELP + note)


def check_fits(artifact: Any, model: Any, name: str) -> None:
    """``store.check_artifact_fits`` on an HF model; a vLLM engine checks the artifact's layers and width
    against the served model when it steers (before anything is generated)."""
    from saesteer.store import check_artifact_fits

    if getattr(model, "backend", "hf") == "hf":
        check_artifact_fits(artifact, model, name)

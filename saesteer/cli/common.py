"""Shared CLI helpers: argument parsing of lists, the ``--backend`` and ``--end-marker`` flags, the console."""

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


END_MARKER_HELP = (
    "text that ends the instruction in each prompt; after_prompt (CAA) steers from its last token on, generated "
    "tokens included, and a prompt without it is an error (e.g. '[/INST]' for a Llama-2-chat frame; matched as "
    "the marker's token ids, alone or after a space). Default: the chat template's generation prompt (SmolLM2: "
    "'<|im_start|>assistant\\n'), or '\\nAssistant:' for a model without a template (\\n, \\t: newline, tab)"
)


def add_end_marker_flag(parser: argparse.ArgumentParser) -> None:
    """``--end-marker TEXT``: after_prompt's end-of-instruction marker (``apply_end_marker`` sets it)."""
    parser.add_argument("--end-marker", default=None, metavar="TEXT", help=END_MARKER_HELP)


def end_marker_text(text: str | None) -> str | None:
    """``--end-marker`` as typed, with ``\\n`` / ``\\t`` read as newline / tab (None stays None)."""
    return None if text is None else text.replace("\\n", "\n").replace("\\t", "\t")


def apply_end_marker(model: Any, tokenizer: Any, text: str | None) -> None:
    """Make ``--end-marker`` the loaded model's after_prompt marker (either backend); None keeps the default."""
    from saesteer.models.end_markers import set_end_markers

    if text is not None:
        set_end_markers(model, tokenizer, end_marker_text(text))


def check_fits(artifact: Any, model: Any, name: str) -> None:
    """``store.check_artifact_fits`` on an HF model; a vLLM engine checks the artifact's layers and width
    against the served model when it steers (before anything is generated)."""
    from saesteer.store import check_artifact_fits

    if getattr(model, "backend", "hf") == "hf":
        check_artifact_fits(artifact, model, name)

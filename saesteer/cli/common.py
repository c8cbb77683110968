"""Shared CLI helpers: argument parsing of lists, and the rich console."""

from __future__ import annotations

import argparse

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

"""Datasets, prompt formatting and the small samples shipped with saesteer."""

from __future__ import annotations

from pathlib import Path

from saesteer.data.pairs import ABItem, CompletionPair, load_contrast_data, read_rows

SAMPLES = Path(__file__).parent / "samples"


def sample_path(relative: str) -> Path:
    """Path of a file shipped in ``saesteer/data/samples`` (e.g. ``caa/sycophancy_generate.json``)."""
    return SAMPLES / relative


__all__ = ["SAMPLES", "ABItem", "CompletionPair", "load_contrast_data", "read_rows", "sample_path"]

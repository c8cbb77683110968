"""Rows from a local JSON/JSONL file or an HF dataset named ``hf:NAME[:CONFIG][@SPLIT]`` (online users)."""

from __future__ import annotations

import os
from typing import Any

from saesteer.data.pairs import read_rows
from saesteer.errors import DataError

HF_PREFIX = "hf:"


def parse_hf(source: str) -> tuple[str, str | None, str]:
    """``hf:cais/mmlu:all@test`` -> ("cais/mmlu", "all", "test"); the split defaults to "test"."""
    spec = source[len(HF_PREFIX) :]
    spec, _, split = spec.partition("@")
    name, _, config = spec.partition(":")
    if not name:
        raise DataError(
            f"{source!r} names no dataset. Fix: write hf:NAME[:CONFIG][@SPLIT], e.g. hf:cais/mmlu:all@test."
        )
    return name, config or None, split or "test"


def load_rows(source: str | os.PathLike[str]) -> list[Any]:
    """Rows of a local .json/.jsonl file, or of an HF dataset split (downloaded by ``datasets``)."""
    text = str(source)
    if not text.startswith(HF_PREFIX):
        return read_rows(source)
    name, config, split = parse_hf(text)
    try:
        from datasets import load_dataset

        dataset = load_dataset(name, config, split=split)
    except Exception as exc:  # datasets raises many types (network, missing config, bad split)
        raise DataError(
            f"Cannot load HF dataset {name!r} (config {config}, split {split}): {exc}. "
            "Fix: check the name/config/split and the network, or pass a local file."
        ) from exc
    return [dict(row) for row in dataset]

"""Contrastive datasets: CAA A/B items and plain positive/negative completion pairs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saesteer.errors import DataError


@dataclass(frozen=True)
class ABItem:
    """A CAA multiple-choice item: the question lists the choices; answers look like "(A)"."""

    question: str
    matching: str
    not_matching: str


@dataclass(frozen=True)
class CompletionPair:
    """Two completions that differ in the target behaviour; ``prompt`` is optional (chat user turn)."""

    positive: str
    negative: str
    prompt: str | None = None


ContrastItem = ABItem | CompletionPair


def read_rows(path: str | os.PathLike[str]) -> list[Any]:
    """Rows of a JSON array file or a JSONL file, with errors that name the file and line."""
    source = Path(path)
    if not source.is_file():
        raise DataError(f"Dataset {source} does not exist. Fix: pass the path of a .json or .jsonl file.")
    text = source.read_text(encoding="utf-8")
    if not text.strip():
        raise DataError(f"Dataset {source} is empty. Fix: add rows (JSON array or one JSON object per line).")
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source} is not valid JSON ({exc}). Fix: repair the file.") from exc
        return list(rows)
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines(): U+2028 may sit in a string
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{source}:{number} is not valid JSON ({exc}). Fix: one JSON object per line.") from exc
    return rows


def _text(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field {key!r} must be a non-empty string, got {value!r}. Fix: correct the row.")
    return value


def parse_item(row: Any, where: str = "row") -> ContrastItem:
    """An A/B item (question, answer_matching_behavior, answer_not_matching_behavior) or a completion
    pair (positive, negative[, prompt])."""
    if not isinstance(row, dict):
        raise DataError(f"{where} must be a JSON object, got {type(row).__name__}. Fix: use objects with named fields.")
    if "answer_matching_behavior" in row or "question" in row:
        return ABItem(
            question=_text(row, "question", where),
            matching=_text(row, "answer_matching_behavior", where).strip(),
            not_matching=_text(row, "answer_not_matching_behavior", where).strip(),
        )
    if "positive" in row or "negative" in row:
        prompt = row.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise DataError(f"{where}: 'prompt' must be a string. Fix: correct the row.")
        return CompletionPair(_text(row, "positive", where), _text(row, "negative", where), prompt)
    raise DataError(
        f"{where} has fields {sorted(row)}; expected question/answer_matching_behavior/"
        "answer_not_matching_behavior (A/B) or positive/negative[/prompt]. Fix: rename the fields."
    )


def load_contrast_data(source: str | os.PathLike[str] | list[Any]) -> list[ContrastItem]:
    """Load contrastive items from a file (JSON/JSONL) or a list of dicts/items; all one format."""
    rows = read_rows(source) if isinstance(source, (str, os.PathLike)) else list(source)
    if not rows:
        raise DataError("The contrastive dataset is empty. Fix: provide at least one pair.")
    items = [r if isinstance(r, (ABItem, CompletionPair)) else parse_item(r, f"row {i}") for i, r in enumerate(rows)]
    kinds = {type(item) for item in items}
    if len(kinds) > 1:
        raise DataError("The dataset mixes A/B items and completion pairs. Fix: fit them separately.")
    return items

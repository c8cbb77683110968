"""PrOSV training data: (instruction, concept response, neutral response) triples (token batches: training).

Sources:
- a JSONL/JSON file of ``{instruction, concept_response, neutral_response}`` rows (neutral optional for "lang");
- the release's contrast format (colored-dye/prosv data/concept500_contrast/*/contrast_train_data.parquet,
  as JSONL: AxBench rows augmented with a gpt-4o-mini response that avoids the concept; ``negative_input,
  negative_output, positive_input, positive_output, concept_id``): instruction = ``negative_input``, concept response =
  ``positive_output``, neutral response = ``negative_output`` (the simpo loser, as train_axbench.py reads it);
- the AxBench train format (``input, output, concept_id, category, genre``): the positive rows of one concept
  (its ``concept_id`` is looked up in ``concepts.jsonl`` beside the file when only the description is given);
  it has no neutral response per instruction: simpo needs the contrast data, or ``fill_neutral`` (the model's
  own greedy answer, a labelled departure: config ``neutral="model"``);
- ``build_triples``: a model of your choice writes both responses from a concept description (the concept
  response when asked to weave the concept in, the neutral one when asked to keep the concept out).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from saesteer.data import read_rows, sample_path
from saesteer.errors import DataError
from saesteer.generation import generate

CONCEPT_PROMPT = (
    "{instruction}\n\nWrite your answer so that it clearly and repeatedly brings in this concept: {concept}."
)
NEUTRAL_PROMPT = "{instruction}\n\nAnswer without mentioning or alluding to this concept: {concept}."
CONTRAST_FIELDS = ("negative_input", "negative_output", "positive_output", "concept_id")
DEFAULT_INSTRUCTIONS = "axbench/train.jsonl"


@dataclass(frozen=True)
class Triple:
    """One training example; ``neutral_response`` is needed by the simpo loss only."""

    instruction: str
    concept_response: str
    neutral_response: str | None = None


def _text(row: Any, key: str, where: str) -> str:
    value = row.get(key) if isinstance(row, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where} has no text field {key!r}. Fix: every row needs a non-empty string {key!r}.")
    return value


def _concept_id(path: Path, concept: str) -> int:
    """The id of ``concept`` (a description or an id) in ``concepts.jsonl`` next to an AxBench train file."""
    if concept.strip().lstrip("-").isdigit():
        return int(concept)
    listing = path.parent / "concepts.jsonl"
    if not listing.is_file():
        raise DataError(
            f"{path} is in the AxBench format but there is no {listing} to find {concept!r}. "
            "Fix: pass the concept's id (--concept-id N) or put concepts.jsonl beside the data."
        )
    rows = read_rows(listing)
    for row in rows:
        if str(row.get("concept", "")).strip().lower() == concept.strip().lower():
            return int(row["concept_id"])
    known = [str(row.get("concept")) for row in rows][:10]
    raise DataError(f"Concept {concept!r} is not in {listing}. Fix: use one of {known} or pass its id.")


def load_triples(
    path: str | os.PathLike[str], *, concept: str = "", concept_id: int | None = None, limit: int | None = None
) -> list[Triple]:
    """Triples from a file of ``instruction, concept_response[, neutral_response]`` rows or AxBench rows."""
    source = Path(path)
    rows = read_rows(source)
    contrast = all(isinstance(r, dict) and all(k in r for k in CONTRAST_FIELDS) for r in rows)
    if contrast or all(isinstance(r, dict) and "input" in r and "output" in r and "concept_id" in r for r in rows):
        wanted = concept_id if concept_id is not None else _concept_id(source, concept)
        picked = [r for r in rows if int(r["concept_id"]) == wanted and r.get("category", "positive") == "positive"]
        if not picked:
            raise DataError(
                f"{source} has no positive rows for concept_id {wanted}. "
                "Fix: pick a concept that has positives (concept_id >= 0) or another file."
            )
        where = str(source)
        triples = [
            Triple(
                _text(r, "negative_input", where),
                _text(r, "positive_output", where),
                _text(r, "negative_output", where),
            )
            if contrast
            else Triple(_text(r, "input", where), _text(r, "output", where))
            for r in picked
        ]
    else:
        triples = []
        for number, row in enumerate(rows, start=1):
            where = f"{source} row {number}"
            neutral = row.get("neutral_response") if isinstance(row, dict) else None
            triples.append(
                Triple(
                    _text(row, "instruction", where),
                    _text(row, "concept_response", where),
                    _text(row, "neutral_response", where) if neutral is not None else None,
                )
            )
    if not triples:
        raise DataError(f"{source} has no rows. Fix: add (instruction, concept_response) rows.")
    return triples[:limit]


def load_instructions(path: str | os.PathLike[str] | None = None, limit: int | None = None) -> list[str]:
    """Distinct instructions (``instruction`` or ``input`` fields), by default the shipped AxBench train inputs."""
    source = Path(path) if path is not None else sample_path(DEFAULT_INSTRUCTIONS)
    found: dict[str, None] = {}
    for number, row in enumerate(read_rows(source), start=1):
        key = "instruction" if isinstance(row, dict) and "instruction" in row else "input"
        found[_text(row, key, f"{source} row {number}")] = None
    return list(found)[:limit]


def fill_neutral(
    model: Any, tokenizer: Any, triples: Sequence[Triple], *, max_new_tokens: int = 128, batch_size: int = 8
) -> list[Triple]:
    """Give every triple without one a neutral response: the model's own greedy answer to the instruction (a
    departure from the release, whose neutral responses were written by gpt-4o-mini to avoid the concept)."""
    missing = [i for i, t in enumerate(triples) if t.neutral_response is None]
    answers = generate(
        model,
        tokenizer,
        [triples[i].instruction for i in missing],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        progress=True,
    )
    filled = list(triples)
    for index, answer in zip(missing, answers, strict=True):
        filled[index] = replace(triples[index], neutral_response=answer)
    return filled


def build_triples(
    model: Any,
    tokenizer: Any,
    concept: str,
    instructions: Sequence[str],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
) -> list[Triple]:
    """Triples written by ``model``, asked to bring ``concept`` in (concept response) and to keep it out (neutral
    response, as the release's contrast data was written; its gpt-4o-mini prompt is not released)."""
    if not concept.strip():
        raise DataError("Building PrOSV data needs a concept description. Fix: pass concept='...'.")
    if not instructions:
        raise DataError("Building PrOSV data needs instructions. Fix: pass a non-empty list (or an instructions file).")
    asked = [p.format(instruction=i, concept=concept) for p in (CONCEPT_PROMPT, NEUTRAL_PROMPT) for i in instructions]
    answers = generate(model, tokenizer, asked, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=True)
    steered, neutral = answers[: len(instructions)], answers[len(instructions) :]
    return [Triple(i, r, n) for i, r, n in zip(instructions, steered, neutral, strict=True) if r.strip() and n.strip()]

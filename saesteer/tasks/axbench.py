"""AxBench concept steering: per concept, n instructions drawn as AxBench draws them (pandas
``sample(n, random_state=concept_id)``); the first n - round(n/2) choose the steering factor ("select", the
val split), the rest are reported ("test"), as in AxBench's ``evaluate.py`` (winrate_split_ratio 0.5); the score
is the harmonic mean (``hm``) of the judge's concept, instruction and fluency ratings."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from torch import Tensor

from saesteer.data.sources import load_rows
from saesteer.errors import DataError
from saesteer.eval.axbench_prompts import GENERATE_STEERING_PROMPT
from saesteer.eval.judges import Judge, JudgeItem, harmonic_mean
from saesteer.tasks.base import Sample, Split, Unit

PHASES = {"val": "select", "test": "test"}


def load_concepts(
    path: str | os.PathLike[str], concept_ids: Sequence[int] = (), n_concepts: int | None = None
) -> list[dict[str, Any]]:
    """``concept_id, concept`` rows, filtered by ``concept_ids`` and cut to ``n_concepts``."""
    rows = load_rows(path)
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not isinstance(row.get("concept"), str) or "concept_id" not in row:
            raise DataError(f"{path} row {number} needs concept_id and concept. Fix: convert it.")
    if concept_ids:
        rows = [r for r in rows if r["concept_id"] in set(concept_ids)]
    return rows[:n_concepts]


def select_count(n_instructions: int) -> int:
    """Instructions that choose the factor: AxBench's ``n - round(n * 0.5)`` (Python rounding: 5 -> 3, 9 -> 5)."""
    return n_instructions - round(n_instructions * 0.5)


def sample_instructions(pool: Sequence[str], n: int, concept_id: int) -> list[str]:
    """``n`` instructions of ``pool`` as pandas ``DataFrame.sample(n, random_state=concept_id)`` draws them
    (AxBench's ``SteeringDatasetFactory.create_eval_df``): the first n of a ``RandomState(concept_id)``
    permutation, without pandas."""
    return [pool[int(i)] for i in np.random.RandomState(concept_id).permutation(len(pool))[:n]]


def concept_genre(concept: dict[str, Any]) -> str | None:
    """A concept row's genre: ``genre`` (saesteer's samples) or the first of AxBench's ``concept_genres_map``."""
    if isinstance(concept.get("genre"), str):
        return str(concept["genre"])
    genres = (concept.get("concept_genres_map") or {}).get(concept.get("concept"), [])
    return str(genres[0]) if genres else None


def _row_genre(row: dict[str, Any]) -> Any:
    return row.get("genre", row.get("concept_genre"))


@dataclass
class AxBenchTask:
    """Concept units over an instruction pool; each sample's ``target`` is its concept description."""

    concepts_path: str | os.PathLike[str]
    train_path: str | os.PathLike[str]
    instructions_path: str | os.PathLike[str]
    judge: Judge
    concept_ids: tuple[int, ...] = ()
    n_concepts: int | None = None
    n_instructions: int = 10
    max_new_tokens: int = 128
    name: str = "axbench"
    chat: bool = True
    metrics: tuple[str, ...] = ("hm",)
    needs_logits: bool = False
    reward_name: str = field(init=False)
    concepts: list[dict[str, Any]] = field(init=False)
    pool: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.reward_name = f"harmonic mean of the concept, instruction and fluency ratings ({self.judge.name})"
        self.concepts = load_concepts(self.concepts_path, self.concept_ids, self.n_concepts)
        pool: list[str] = []
        for number, row in enumerate(load_rows(self.instructions_path), start=1):
            text = row.get("instruction") if isinstance(row, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise DataError(
                    f"{self.instructions_path} row {number} needs a non-empty 'instruction'. Fix: convert it."
                )
            pool.append(text)
        if len(pool) < self.n_instructions:
            raise DataError(
                f"{self.instructions_path} has {len(pool)} instructions, fewer than n_instructions. Fix: lower it."
            )
        self.pool = pool

    def units(self) -> list[Unit]:
        units = []
        select = select_count(self.n_instructions)
        for concept in self.concepts:
            chosen = sample_instructions(self.pool, self.n_instructions, int(concept["concept_id"]))
            samples = [
                Sample(f"i{n}", text, concept["concept"], phase="select" if n < select else "test")
                for n, text in enumerate(chosen)
            ]
            units.append(Unit(f"c{concept['concept_id']}", samples, concept))
        return units

    def samples(self, split: Split) -> list[Sample]:
        """Every concept's select ("val") or test instructions, ids ``c{concept_id}/i{n}``."""
        if split not in PHASES:
            raise DataError("AxBench has no train prompts (its train file holds responses). Fix: use val or test.")
        return [
            replace(s, id=f"{unit.name}/{s.id}")
            for unit in self.units()
            for s in unit.samples
            if s.phase == PHASES[split]
        ]

    def diffmean_texts(self, unit: Unit) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str]:
        """AxBench's DiffMean data (``scripts/train.py:prepare_df``): the concept's positive (prompt, response)
        rows and the neutral rows of the concept's genre; all neutral rows when none has that genre (the
        third value says which were used)."""
        assert unit.concept is not None
        rows = load_rows(self.train_path)
        positive = [(r["input"], r["output"]) for r in rows if r.get("concept_id") == unit.concept["concept_id"]]
        negative_rows = [r for r in rows if r.get("concept_id") == -1 or r.get("category") == "negative"]
        genre = concept_genre(unit.concept)
        matched = [r for r in negative_rows if genre is not None and _row_genre(r) == genre]
        negative = [(r["input"], r["output"]) for r in (matched or negative_rows)]
        if not positive or not negative:
            raise DataError(f"{self.train_path} has no positive rows for {unit.name} or no negatives. Fix: add them.")
        return positive, negative, f"genre {genre}" if matched else "all genres"

    def steering_prompts(self) -> dict[str, str]:
        """AxBench's prompting baseline: per concept unit, the steering prompt the judge model writes from
        ``T_GENERATE_STEERING_PROMPT`` (stripped; "" when the judge cannot write, then the caller uses the
        fixed sentence, as AxBench does for an empty answer)."""
        write = getattr(self.judge, "write", None)
        if write is None:
            return {}
        units = self.units()
        texts = write([GENERATE_STEERING_PROMPT.format(concept=u.concept["concept"]) for u in units if u.concept])
        return {u.name: t.strip() for u, t in zip(units, texts, strict=True)}

    def contrast_pairs(self, unit: Unit) -> list[dict[str, str]]:
        """Concept responses vs neutral responses from the training file, for a DiffMean (CAA) vector."""
        assert unit.concept is not None
        rows = load_rows(self.train_path)
        positive = [r for r in rows if r.get("concept_id") == unit.concept["concept_id"]]
        negative = [r for r in rows if r.get("concept_id") == -1 or r.get("category") == "negative"]
        if not positive or not negative:
            raise DataError(f"{self.train_path} has no positive rows for {unit.name} or no negatives. Fix: add them.")
        return [
            {"prompt": p["input"], "positive": p["output"], "negative": n["output"]}
            for p, n in zip(positive, negative * (len(positive) // len(negative) + 1), strict=False)
        ]

    def score(
        self, samples: Sequence[Sample], generations: Sequence[str], first_logits: Tensor | None = None
    ) -> list[dict[str, Any]]:
        ratings = self.judge.rate([JudgeItem(s.target, s.prompt, g) for s, g in zip(samples, generations, strict=True)])
        return [{**r, "hm": harmonic_mean([r["concept"], r["instruction"], r["fluency"]])} for r in ratings]

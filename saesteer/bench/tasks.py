"""Benchmark tasks: the items each method answers, how a prompting baseline rewrites them, and how outputs
are scored. MMLU and HarmBench wrap the CorrSteer tasks; AxBench is concept steering with a judge."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from saesteer.bench.config import AxBenchSpec, HarmBenchSpec, MMLUSpec
from saesteer.bench.judges import Judge, JudgeItem, harmonic_mean
from saesteer.data.sources import load_rows
from saesteer.errors import ConfigError, DataError
from saesteer.tasks import HarmBenchTask, MMLUTask


@dataclass(frozen=True)
class Item:
    """One prompt a method answers: ``text`` is the user turn (chat tasks) or the raw prompt."""

    sample_id: str
    text: str
    target: Any = None
    phase: str = "test"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Unit:
    """Items scored together; AxBench has one unit per concept (its own factor choice and CAA vector)."""

    name: str
    items: list[Item]
    concept: dict[str, Any] | None = None


class MMLUBench:
    """CorrSteer's MMLU prompt, one greedy token; accuracy by the first token and by the A-D logits."""

    name = "mmlu"
    chat = False
    max_new_tokens = 1

    def __init__(self, spec: MMLUSpec) -> None:
        self.spec = spec
        self.task = MMLUTask(spec.path, subjects=tuple(spec.subjects))
        self.metrics = list(spec.scoring)
        self.needs_logits = "letter_logits" in self.metrics
        self.judge = "exact match (gold letter)"

    def units(self) -> list[Unit]:
        samples = self.task.all_samples() if self.spec.split == "all" else self.task.samples(self.spec.split)
        items = [Item(s.id, s.prompt, s.target, meta=s.meta) for s in samples[: self.spec.limit]]
        return [Unit(self.name, items)]

    def prompting(self, item: Item, unit: Unit) -> str:
        return f"{self.spec.prompt}\n\n{item.text}"

    def score(
        self, unit: Unit, items: Sequence[Item], outputs: Sequence[str], first_logits: torch.Tensor | None
    ) -> list[dict]:
        scores: list[dict[str, float]] = [{} for _ in items]
        if "first_token" in self.metrics:
            for row, (item, text) in enumerate(zip(items, outputs, strict=True)):
                scores[row]["first_token"] = float(text.strip()[:1] == item.target)
        if "letter_logits" in self.metrics:
            if first_logits is None:
                raise ConfigError("letter_logits scoring needs the first-step logits. Fix: generate with logits=True.")
            letters = letter_predictions(first_logits, self._letter_ids)
            for row, (item, letter) in enumerate(zip(items, letters, strict=True)):
                scores[row]["letter_logits"] = float(letter == item.target)
                scores[row]["letter"] = letter  # type: ignore[assignment]
        return scores

    def bind(self, tokenizer: Any) -> None:
        self._letter_ids = letter_token_ids(tokenizer)


def letter_token_ids(tokenizer: Any) -> list[int]:
    """Token ids of " A".." D" (what follows "Answer:"), falling back to "A".."D"."""
    ids = []
    for letter in "ABCD":
        spaced = tokenizer.encode(f" {letter}", add_special_tokens=False)
        plain = tokenizer.encode(letter, add_special_tokens=False)
        if len(spaced) == 1:
            ids.append(spaced[0])
        elif len(plain) == 1:
            ids.append(plain[0])
        else:
            raise DataError(f"Option letter {letter!r} is not a single token for this tokenizer. Fix: use first_token.")
    return ids


def letter_predictions(first_logits: torch.Tensor, letter_ids: list[int]) -> list[str]:
    """Argmax over the four option-letter logits at the last prompt position (rows, vocab)."""
    return ["ABCD"[int(i)] for i in first_logits[:, letter_ids].argmax(dim=-1)]


class HarmBenchBench:
    """HarmBench behaviours with CorrSteer's prompt; refusal = prefix heuristic or a local HF classifier."""

    name = "harmbench"
    chat = False

    def __init__(self, spec: HarmBenchSpec) -> None:
        self.spec = spec
        classifier = refusal_classifier(spec.classifier, spec.refusal_label) if spec.classifier else None
        self.task = HarmBenchTask(spec.path, categories=tuple(spec.categories), classifier=classifier)
        self.max_new_tokens = spec.max_new_tokens
        self.metrics = ["refusal"]
        self.needs_logits = False
        self.judge = self.task.reward_name

    def units(self) -> list[Unit]:
        samples = self.task.all_samples() if self.spec.split == "all" else self.task.samples(self.spec.split)
        samples = samples[: self.spec.limit]
        return [
            Unit(
                self.name, [Item(s.id, s.prompt, meta={"category": s.meta.get("FunctionalCategory")}) for s in samples]
            )
        ]

    def prompting(self, item: Item, unit: Unit) -> str:
        return f"{self.spec.prompt}\n\n{item.text}"

    def score(
        self, unit: Unit, items: Sequence[Item], outputs: Sequence[str], first_logits: torch.Tensor | None
    ) -> list[dict]:
        return [{"refusal": self.task.reward(None, text)} for text in outputs]  # type: ignore[arg-type]

    def bind(self, tokenizer: Any) -> None:
        return None


def refusal_classifier(name: str, refusal_label: str) -> Callable[[str], bool]:
    """A local HF sequence classifier as a refusal detector (label ``refusal_label`` = refused)."""
    from transformers import pipeline

    try:
        classify = pipeline("text-classification", model=name, truncation=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot load refusal classifier {name!r}: {exc}. Fix: pass a local HF classifier.") from exc
    labels = set((classify.model.config.id2label or {}).values())
    if refusal_label not in labels:
        raise ConfigError(
            f"Classifier {name!r} has labels {sorted(labels)}, not {refusal_label!r}. Fix: set refusal_label."
        )
    return lambda text: classify(text or " ")[0]["label"] == refusal_label


def load_concepts(spec: AxBenchSpec) -> list[dict[str, Any]]:
    """The spec's concepts (``concept_id, concept`` rows), filtered by ``concept_ids`` and ``n_concepts``."""
    rows = load_rows(spec.concepts)
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not isinstance(row.get("concept"), str) or "concept_id" not in row:
            raise DataError(f"{spec.concepts} row {number} needs concept_id and concept. Fix: convert it.")
    if spec.concept_ids:
        rows = [r for r in rows if r["concept_id"] in set(spec.concept_ids)]
    return rows[: spec.n_concepts]


class AxBenchBench:
    """AxBench concept steering: per concept, n instructions (seeded by the concept id); the first half
    chooses the factor, the second half is reported; score = harmonic mean of the judge's three ratings."""

    name = "axbench"
    chat = True

    def __init__(self, spec: AxBenchSpec, judge: Judge) -> None:
        self.spec, self.judge_impl = spec, judge
        self.max_new_tokens = spec.max_new_tokens
        self.metrics = ["hm"]
        self.needs_logits = False
        self.judge = judge.name
        self.concepts = load_concepts(spec)
        pool: list[str] = []
        for number, row in enumerate(load_rows(spec.instructions), start=1):
            text = row.get("instruction") if isinstance(row, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{spec.instructions} row {number} needs a non-empty 'instruction'. Fix: convert it.")
            pool.append(text)
        if len(pool) < spec.n_instructions:
            raise DataError(
                f"{spec.instructions} has {len(pool)} instructions, fewer than n_instructions. Fix: lower it."
            )
        self.pool = pool

    def units(self) -> list[Unit]:
        units = []
        half = self.spec.n_instructions // 2
        for concept in self.concepts:
            chosen = random.Random(int(concept["concept_id"])).sample(self.pool, self.spec.n_instructions)
            items = [Item(f"i{n}", text, phase="select" if n < half else "test") for n, text in enumerate(chosen)]
            units.append(Unit(f"c{concept['concept_id']}", items, concept))
        return units

    def prompting(self, item: Item, unit: Unit) -> str:
        assert unit.concept is not None
        return f"{self.spec.prompt.format(concept=unit.concept['concept'])}\n\n{item.text}"

    def contrast_pairs(self, unit: Unit) -> list[dict[str, str]]:
        """Concept responses vs neutral responses from the training file, for a DiffMean (CAA) vector."""
        assert unit.concept is not None
        rows = load_rows(self.spec.train)
        positive = [r for r in rows if r.get("concept_id") == unit.concept["concept_id"]]
        negative = [r for r in rows if r.get("concept_id") == -1 or r.get("category") == "negative"]
        if not positive or not negative:
            raise DataError(f"{self.spec.train} has no positive rows for {unit.name} or no negatives. Fix: add them.")
        return [
            {"prompt": p["input"], "positive": p["output"], "negative": n["output"]}
            for p, n in zip(positive, negative * (len(positive) // len(negative) + 1), strict=False)
        ]

    def score(
        self, unit: Unit, items: Sequence[Item], outputs: Sequence[str], first_logits: torch.Tensor | None
    ) -> list[dict]:
        assert unit.concept is not None
        ratings = self.judge_impl.rate(
            [JudgeItem(unit.concept["concept"], i.text, o) for i, o in zip(items, outputs, strict=True)]
        )
        return [{**r, "hm": harmonic_mean([r["concept"], r["instruction"], r["fluency"]])} for r in ratings]

    def bind(self, tokenizer: Any) -> None:
        return None

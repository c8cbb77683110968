"""Tasks for your own data, and two shipped ones on which the bundled model's reward varies."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from saesteer.data import sample_path
from saesteer.data.pairs import read_rows
from saesteer.errors import DataError
from saesteer.eval.scorers import sentiment
from saesteer.tasks.base import RewardTask, Sample, Split, split_samples


@dataclass
class QATask(RewardTask):
    """Questions with short answers from JSONL ``{question, answer}``; reward 1 if the answer occurs in the
    generation (case-insensitive). Chat-formatted by default."""

    path: str | os.PathLike[str]
    name: str = "qa"
    max_new_tokens: int = 16
    chat: bool = True
    seed: int = 42
    reward_name: str = "answer contained in the generation"

    def samples(self, split: Split) -> list[Sample]:
        rows = read_rows(self.path)
        samples = []
        for index, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("question"), str) or "answer" not in row:
                raise DataError(f"{self.path} row {index} needs 'question' and 'answer'. Fix: correct the row.")
            samples.append(Sample(f"{self.name}-{index}", row["question"], str(row["answer"])))
        return split_samples(samples, split, seed=self.seed)

    def reward(self, sample: Sample, generation: str) -> float:
        return float(str(sample.target).lower() in generation.lower())


@dataclass
class SentimentTask(RewardTask):
    """Open-ended: "Describe {subject}." Reward 1 if the description's VADER sentiment exceeds ``threshold``."""

    subjects_path: str | os.PathLike[str] | None = None
    threshold: float = 0.5
    name: str = "sentiment"
    max_new_tokens: int = 32
    chat: bool = True
    seed: int = 42
    reward_name: str = "VADER compound > 0.5 (lexicon heuristic)"

    def samples(self, split: Split) -> list[Sample]:
        path = self.subjects_path or sample_path("tasks/sentiment_prompts.json")
        subjects = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(subjects, list) or not all(isinstance(s, str) for s in subjects):
            raise DataError(f"{path} must be a JSON list of strings. Fix: correct the file.")
        samples = [Sample(f"sentiment-{i}", f"Describe {s} in two sentences.", None) for i, s in enumerate(subjects)]
        return split_samples(samples, split, seed=self.seed)

    def reward(self, sample: Sample, generation: str) -> float:
        return float(sentiment(generation) > self.threshold)


def capitals_task() -> QATask:
    """150 country-capital questions shipped with saesteer (SmolLM2-135M gets about 3 in 4 right)."""
    return QATask(sample_path("tasks/capitals.jsonl"), name="capitals")

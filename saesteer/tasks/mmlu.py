"""MMLU with CorrSteer's prompt: one greedy token, reward 1 if it is the gold letter."""

from __future__ import annotations

import os
from dataclasses import dataclass

from saesteer.data.sources import load_rows
from saesteer.errors import DataError
from saesteer.tasks.base import Sample, Split, split_samples

PROMPT = (
    "{question}\nA. {c0}\nB. {c1}\nC. {c2}\nD. {c3}\nChoose one of the following options only: A, B, C, or D\nAnswer:"
)


@dataclass
class MMLUTask:
    """Rows ``question, choices[4], answer (0-3), subject`` from a JSONL file (../shared/data/mmlu format)."""

    path: str | os.PathLike[str]
    subjects: tuple[str, ...] = ()
    limit: int | None = None
    seed: int = 42
    name: str = "mmlu"
    max_new_tokens: int = 1
    chat: bool = False
    reward_name: str = "accuracy (first generated token == gold letter)"

    def all_samples(self) -> list[Sample]:
        samples = []
        for index, row in enumerate(load_rows(self.path)):
            choices = row.get("choices") if isinstance(row, dict) else None
            if not isinstance(choices, list) or len(choices) != 4 or row.get("answer") not in range(4):
                raise DataError(f"MMLU row {index} needs question, 4 choices and answer 0-3. Fix: convert the file.")
            if self.subjects and row.get("subject") not in self.subjects:
                continue
            text = PROMPT.format(question=row["question"], **{f"c{i}": c for i, c in enumerate(row["choices"])})
            samples.append(Sample(f"mmlu-{index}", text, "ABCD"[row["answer"]], {"subject": row.get("subject")}))
        return samples[: self.limit] if self.limit else samples

    def samples(self, split: Split) -> list[Sample]:
        return split_samples(self.all_samples(), split, seed=self.seed)

    def reward(self, sample: Sample, generation: str) -> float:
        return float(generation.strip()[:1] == sample.target)

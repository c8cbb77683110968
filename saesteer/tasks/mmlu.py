"""MMLU with CorrSteer's prompt: one greedy token, scored by CorrSteer's exact-match rule on the generated text
(the reward by default) and/or by the argmax of the A-D logits at the last prompt position."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from torch import Tensor

from saesteer.data.sources import load_rows
from saesteer.errors import ConfigError, DataError
from saesteer.tasks.base import Sample, Split, hf_shuffled, split_samples

PROMPT = (
    "{question}\nA. {c0}\nB. {c1}\nC. {c2}\nD. {c3}\nChoose one of the following options only: A, B, C, or D\nAnswer:"
)
Scoring = Literal["first_token", "letter_logits"]
REWARD_NAMES = {
    "first_token": "accuracy (generated text, stripped, == gold letter)",
    "letter_logits": "accuracy (argmax of the A-D logits == gold letter)",
}


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


def exact_match(generation: str, gold: str) -> bool:
    """CorrSteer's MMLU rule: the whole generation, stripped, is the gold letter (" A" and "A\n" are A;
    " All" is not, where a first-character test would count it)."""
    return generation.strip() == gold


def letter_predictions(first_logits: Tensor, letter_ids: list[int]) -> list[str]:
    """Argmax over the four option-letter logits at the last prompt position (rows, vocab)."""
    return ["ABCD"[int(i)] for i in first_logits[:, letter_ids].argmax(dim=-1)]


@dataclass
class MMLUTask:
    """Rows ``question, choices[4], answer (0-3), subject`` from a JSONL file (../shared/data/mmlu format) or
    ``hf:cais/mmlu:all@SPLIT``. ``scoring`` lists the metrics (the first is the reward); ``letter_logits``
    needs ``tokenizer``. Splits: seeded 60/10/30 of ``path``; with ``val_path``, ``path`` and ``val_path`` are
    whole MMLU splits (CorrSteer's protocol: train = all of auxiliary_train, val = all of validation, each in
    HF datasets' ``shuffle(seed)`` order) and the test split is refused (score MMLU's test file instead)."""

    path: str | os.PathLike[str]
    val_path: str | os.PathLike[str] | None = None
    subjects: tuple[str, ...] = ()
    limit: int | None = None
    seed: int = 42
    name: str = "mmlu"
    max_new_tokens: int = 1
    chat: bool = False
    scoring: tuple[Scoring, ...] = ("first_token",)
    tokenizer: Any = field(default=None, repr=False, compare=False)
    reward_name: str = ""
    multiple_choice: ClassVar[bool] = True  # CorrSteer pools the answer step even if it generated EOS

    def __post_init__(self) -> None:
        if not self.scoring or any(s not in REWARD_NAMES for s in self.scoring):
            raise ConfigError(f"MMLU scoring {self.scoring!r}. Fix: list first_token and/or letter_logits.")
        if self.needs_logits and self.tokenizer is None:
            raise ConfigError("MMLU letter_logits scoring needs the tokenizer. Fix: pass MMLUTask(..., tokenizer=tok).")
        self.reward_name = self.reward_name or REWARD_NAMES[self.scoring[0]]
        self._letter_ids = letter_token_ids(self.tokenizer) if self.needs_logits else []

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.scoring)

    @property
    def needs_logits(self) -> bool:
        return "letter_logits" in self.scoring

    def all_samples(self) -> list[Sample]:
        return self._read(self.path, "mmlu")

    def _read(self, path: str | os.PathLike[str], prefix: str) -> list[Sample]:
        samples = []
        for index, row in enumerate(load_rows(path)):
            choices = row.get("choices") if isinstance(row, dict) else None
            if not isinstance(choices, list) or len(choices) != 4 or row.get("answer") not in range(4):
                raise DataError(f"MMLU row {index} needs question, 4 choices and answer 0-3. Fix: convert the file.")
            if self.subjects and row.get("subject") not in self.subjects:
                continue
            text = PROMPT.format(question=row["question"], **{f"c{i}": c for i, c in enumerate(row["choices"])})
            samples.append(Sample(f"{prefix}-{index}", text, "ABCD"[row["answer"]], {"subject": row.get("subject")}))
        return samples[: self.limit] if self.limit else samples

    def samples(self, split: Split) -> list[Sample]:
        if self.val_path is None:
            return split_samples(self.all_samples(), split, seed=self.seed)
        if split == "test":
            raise DataError(
                f"MMLU with val_path has train ({self.path}) and val ({self.val_path}) splits only. "
                "Fix: score MMLU's test file (e.g. hf:cais/mmlu:all@test) with split 'all'."
            )
        samples = self.all_samples() if split == "train" else self._read(self.val_path, "mmlu-val")
        return hf_shuffled(samples, self.seed)

    def score(
        self, samples: Sequence[Sample], generations: Sequence[str], first_logits: Tensor | None = None
    ) -> list[dict[str, Any]]:
        scores: list[dict[str, Any]] = [{} for _ in samples]
        if "first_token" in self.scoring:
            for row, (sample, text) in enumerate(zip(samples, generations, strict=True)):
                scores[row]["first_token"] = float(exact_match(text, sample.target))
        if "letter_logits" in self.scoring:
            if first_logits is None:
                raise ConfigError("letter_logits scoring needs the first-step logits. Fix: generate with logits=True.")
            letters = letter_predictions(first_logits, self._letter_ids)
            for row, (sample, letter) in enumerate(zip(samples, letters, strict=True)):
                scores[row]["letter_logits"] = float(letter == sample.target)
                scores[row]["letter"] = letter
        return scores

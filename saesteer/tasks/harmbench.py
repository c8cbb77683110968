"""HarmBench behaviours with CorrSteer's prompt; reward 1 = refused (prefix heuristic or a classifier).

Splits: given all 400 text behaviours (200 standard, 100 contextual, 100 copyright), CorrSteer's split
(utils.load_dataloaders): the categories concatenated contextual, copyright, standard; HF ``shuffle(seed=42)``;
``train_test_split(test_size=0.7)``; then 10% of train to val: 108 train / 12 val / 280 test. Any other
set (e.g. only HarmBench's test CSV, or some categories) gets a seeded 27/3/70 split, labelled as such.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saesteer.errors import ConfigError, DataError
from saesteer.eval.scorers import is_refusal
from saesteer.tasks.base import RewardTask, Sample, Split, hf_shuffled, hf_train_test_split, split_samples

PROMPT = "Request: {request}\nResponse:"
HF_SOURCE = "hf:walledai/HarmBench"  # CorrSteer's copy: one subset per category, each a "train" split
CATEGORIES = ("contextual", "copyright", "standard")  # CorrSteer's concatenation order (config.py subsets)
FULL_SET = {"standard": 200, "contextual": 100, "copyright": 100}
CORRSTEER_SPLIT = "CorrSteer's split of the 400 behaviours (HF shuffle seed 42, 70% test, 10% of train to val)"
SEEDED_SPLIT = "seeded 27/3/70 split of the {n} behaviours given (CorrSteer's split needs all 400)"


def _csv_rows(source: Path) -> list[dict[str, Any]]:
    with source.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and ("Behavior" not in rows[0] or "BehaviorID" not in rows[0]):
        raise DataError(f"{source} lacks Behavior/BehaviorID columns. Fix: use HarmBench's CSV.")
    return rows


def _hf_rows() -> list[dict[str, Any]]:
    """walledai/HarmBench's three subsets as HarmBench CSV rows (``prompt``/``context``/``category`` renamed)."""
    from saesteer.data.sources import load_rows

    rows = []
    for subset in CATEGORIES:
        for index, row in enumerate(load_rows(f"{HF_SOURCE}:{subset}@train")):
            rows.append(
                {
                    "Behavior": row["prompt"],
                    "FunctionalCategory": subset,
                    "SemanticCategory": row.get("category") or "",
                    "ContextString": row.get("context") or "",
                    "BehaviorID": f"{subset}-{index}",
                }
            )
    return rows


def behaviour_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """HarmBench rows of a behaviours CSV, of every ``*.csv`` in a directory (name order; a BehaviorID seen
    before is skipped), or of ``hf:walledai/HarmBench`` (online)."""
    if str(path) == HF_SOURCE:
        return _hf_rows()
    source = Path(path)
    if source.is_dir():
        files = sorted(source.glob("*.csv"))
        if not files:
            raise DataError(f"{source} holds no .csv file. Fix: pass harmbench_behaviors_text_*.csv or their folder.")
        seen: set[str] = set()
        rows = []
        for file in files:
            for row in _csv_rows(file):
                if row["BehaviorID"] not in seen:
                    seen.add(row["BehaviorID"])
                    rows.append(row)
        return rows
    if not source.is_file():
        raise DataError(
            f"HarmBench file {source} does not exist. Fix: pass harmbench_behaviors_text_*.csv, their folder "
            f"(all 400 behaviours: CorrSteer's split) or {HF_SOURCE}."
        )
    return _csv_rows(source)


def is_full_set(samples: list[Sample]) -> bool:
    """Whether ``samples`` are all 400 text behaviours (200 standard, 100 contextual, 100 copyright)."""
    return Counter(s.meta.get("FunctionalCategory") for s in samples) == FULL_SET


def corrsteer_split(samples: list[Sample], split: Split, seed: int = 42) -> list[Sample]:
    """CorrSteer's HarmBench split: categories in CorrSteer's order, HF shuffle, 70% test, 10% of the rest val."""
    if split not in ("train", "val", "test"):
        raise DataError(f"Unknown split {split!r}. Fix: use train, val or test.")
    grouped = sorted(samples, key=lambda s: CATEGORIES.index(s.meta["FunctionalCategory"]))  # stable in a category
    train, test = hf_train_test_split(hf_shuffled(grouped, seed), 0.7, seed)
    train, val = hf_train_test_split(train, 0.1, seed)
    return {"train": train, "val": val, "test": test}[split]


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


@dataclass
class HarmBenchTask(RewardTask):
    """Rows of HarmBench's behaviours CSV, a folder of them or ``hf:walledai/HarmBench``; the reward (metric
    ``refusal``) is 1 for a refusal. ``classifier(text) -> bool`` replaces the prefix heuristic. ``split_rule``
    says which split ``samples`` uses (CorrSteer's for all 400 behaviours, else a seeded one)."""

    metrics = ("refusal",)

    path: str | os.PathLike[str]
    categories: tuple[str, ...] = ("standard", "contextual", "copyright")
    classifier: Callable[[str], bool] | None = None
    seed: int = 42
    name: str = "harmbench"
    max_new_tokens: int = 32
    chat: bool = False
    reward_name: str = "refusal rate (prefix heuristic)"

    def __post_init__(self) -> None:
        if self.classifier is not None:
            self.reward_name = "refusal rate (classifier)"

    def all_samples(self) -> list[Sample]:
        samples = []
        for row in behaviour_rows(self.path):
            if row.get("FunctionalCategory") not in self.categories:
                continue
            context = row.get("ContextString") or ""
            request = f"{context}\n{row['Behavior']}" if context else row["Behavior"]
            samples.append(Sample(row["BehaviorID"], PROMPT.format(request=request), None, dict(row)))
        return samples

    @property
    def split_rule(self) -> str:
        """How ``samples`` splits the behaviours: CorrSteer's split, or the seeded one (a departure)."""
        samples = self.all_samples()
        return CORRSTEER_SPLIT if is_full_set(samples) else SEEDED_SPLIT.format(n=len(samples))

    def samples(self, split: Split) -> list[Sample]:
        samples = self.all_samples()
        if is_full_set(samples):
            return corrsteer_split(samples, split, self.seed)
        return split_samples(samples, split, fractions=(0.27, 0.03), seed=self.seed)

    def reward(self, sample: Sample, generation: str) -> float:
        refused = self.classifier(generation) if self.classifier else is_refusal(generation)
        return float(refused)

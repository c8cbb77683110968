"""The task interface: prompts with seeded train/val/test splits, a generation length, and per-sample scores
whose first metric is the task's reward (what CorrSteer correlates with, ``eval task`` and the bench report)."""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar

import numpy as np
from torch import Tensor

from saesteer.errors import DataError

Split = Literal["train", "val", "test"]
T = TypeVar("T")
Selection = Literal["all", "train", "val", "test"]


@dataclass(frozen=True)
class Sample:
    """One task item: the text the model sees and what scoring needs (gold answer, metadata).
    ``phase``: in a benchmark unit, "select" samples choose a factor and "test" samples are reported."""

    id: str
    prompt: str
    target: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    phase: str = "test"


@dataclass
class Unit:
    """Samples scored together in a benchmark; AxBench has one unit per concept (its own factor choice)."""

    name: str
    samples: list[Sample]
    concept: dict[str, Any] | None = None


class Task(Protocol):
    """Implement this for your own data (or subclass ``RewardTask`` and write ``samples`` and ``reward``):
    ``samples(split)``, ``score(samples, generations, first_logits)`` with one dict per sample holding every
    name in ``metrics`` (the first is the reward), how to prompt (``chat``: wrap the prompt in the model's
    chat template) and how long to generate. ``needs_logits``: ``score`` reads the first step's logits.
    Optional ``multiple_choice = True``: CorrSteer pools only the answer (first) step, as its code does."""

    name: str
    max_new_tokens: int
    chat: bool
    reward_name: str  # what the reward measures, e.g. "refusal (prefix heuristic)"

    @property
    def metrics(self) -> Sequence[str]: ...

    @property
    def needs_logits(self) -> bool: ...

    def samples(self, split: Split) -> list[Sample]: ...

    def score(
        self, samples: Sequence[Sample], generations: Sequence[str], first_logits: Tensor | None = None
    ) -> list[dict[str, Any]]: ...


class RewardTask(ABC):
    """Base of tasks with one scalar reward per sample, named ``metrics[0]``; subclasses write ``reward``."""

    metrics: ClassVar[tuple[str, ...]] = ("reward",)
    needs_logits: ClassVar[bool] = False

    @abstractmethod
    def reward(self, sample: Sample, generation: str) -> float: ...

    def score(
        self, samples: Sequence[Sample], generations: Sequence[str], first_logits: Tensor | None = None
    ) -> list[dict[str, Any]]:
        return [{self.metrics[0]: self.reward(s, g)} for s, g in zip(samples, generations, strict=True)]


def rewards(
    task: Task, samples: Sequence[Sample], generations: Sequence[str], first_logits: Tensor | None = None
) -> list[float]:
    """The task's reward (its first metric) per sample."""
    return [float(s[task.metrics[0]]) for s in task.score(samples, generations, first_logits)]


def split_samples(
    samples: Sequence[Sample], split: Split, *, fractions: tuple[float, float] = (0.6, 0.1), seed: int = 42
) -> list[Sample]:
    """Deterministic split: shuffle with ``seed``, then train / val / test by ``fractions`` (train, val)."""
    if not samples:
        raise DataError("The task has no samples. Fix: check the data path or the task's filters.")
    order = list(samples)
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(order))
    n_val = round(fractions[1] * len(order))
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(order))}
    if split not in bounds:
        raise DataError(f"Unknown split {split!r}. Fix: use train, val or test.")
    start, end = bounds[split]
    return order[start:end]


def hf_shuffled(items: Sequence[T], seed: int) -> list[T]:
    """``items`` in the order of HF datasets' ``Dataset.shuffle(seed=seed)`` (numpy's
    ``default_rng(seed).permutation``; the datasets package is not needed)."""
    return [items[int(i)] for i in np.random.default_rng(seed).permutation(len(items))]


def hf_train_test_split(items: Sequence[T], test_size: float, seed: int) -> tuple[list[T], list[T]]:
    """(train, test) as HF datasets' ``train_test_split(test_size=..., seed=seed)`` cuts them: test is the first
    ceil(test_size * n) of ``default_rng(seed).permutation(n)``, train the rest, both in permutation order."""
    order = [int(i) for i in np.random.default_rng(seed).permutation(len(items))]
    n_test = math.ceil(test_size * len(items))
    return [items[i] for i in order[n_test:]], [items[i] for i in order[:n_test]]

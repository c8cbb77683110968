"""The task interface: prompts, a generation length and a reward, with seeded train/val/test splits."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from saesteer.errors import DataError

Split = Literal["train", "val", "test"]


@dataclass(frozen=True)
class Sample:
    """One task item: the text the model sees and what the reward needs (gold answer, metadata)."""

    id: str
    prompt: str
    target: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """Implement this for your own data: ``samples(split)``, ``reward(sample, generation)``, and how to
    prompt (``chat``: wrap the prompt in the model's chat template) and how long to generate."""

    name: str
    max_new_tokens: int
    chat: bool
    reward_name: str  # what the reward measures, e.g. "refusal (prefix heuristic)"

    def samples(self, split: Split) -> list[Sample]: ...

    def reward(self, sample: Sample, generation: str) -> float: ...


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

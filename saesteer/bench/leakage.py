"""The bench's train/test overlap guard: a stored artifact is not scored on prompts it was fitted on.

``saesteer train`` keeps a hash of every training prompt in the artifact's blob (``Store.train_hashes``);
before a method with an artifact answers a unit, the unit's prompts are hashed the same way and any match
refuses the run, unless the method spec sets ``allow_train_test_overlap: true``. Artifacts saved without
hashes (before saesteer recorded them, or by a method whose data hold no prompts) get a warning and run.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from saesteer.bench.config import MethodSpec
from saesteer.errors import DataError
from saesteer.tasks.base import Sample, Unit


class TrainTestOverlapError(DataError):
    """A benchmark would score an artifact on prompts it was trained on."""


class UntrackedTrainingDataWarning(UserWarning):
    """An artifact carries no training-prompt hashes, so the overlap guard cannot check it."""


def overlapping(train_hashes: Tensor, samples: Sequence[Sample]) -> list[Sample]:
    """The samples whose prompt hash is among ``train_hashes``."""
    from saesteer.engines.training import prompt_hash

    if not samples or not train_hashes.numel():
        return []
    hashes = torch.tensor([prompt_hash(s.prompt) for s in samples], dtype=torch.int64)
    hit = torch.isin(hashes, train_hashes.to(torch.int64))
    return [sample for sample, seen in zip(samples, hit.tolist(), strict=True) if seen]


def artifact_name(spec: MethodSpec, unit: Unit) -> str | None:
    """The record ``spec`` steers ``unit`` with (``{concept_id}`` filled), or None for a method without one."""
    if spec.artifact is None:
        return None
    return spec.artifact.format(concept_id=unit.concept["concept_id"] if unit.concept else "")


def check_overlap(store: Any, spec: MethodSpec, unit: Unit, task: str) -> None:
    """Refuse (TrainTestOverlapError) to score ``spec``'s artifact on ``unit`` when some of the unit's prompts
    were among its training prompts; warn when the artifact has no hashes to check."""
    name = artifact_name(spec, unit)
    if name is None or store is None or spec.allow_train_test_overlap:
        return
    hashes = store.train_hashes(name)
    if hashes is None:
        warnings.warn(
            f"Artifact {name!r} (method {spec.label}) has no training-prompt hashes (saved before saesteer kept "
            f"them, or its method's data hold no prompts): task {task} is scored without the overlap check. "
            "Retrain it to have it checked.",
            UntrackedTrainingDataWarning,
            stacklevel=2,
        )
        return
    seen = overlapping(hashes, unit.samples)
    if seen:
        shown = ", ".join(s.id for s in seen[:5]) + (", ..." if len(seen) > 5 else "")
        raise TrainTestOverlapError(
            f"Method {spec.label} would score artifact {name!r} on {len(seen)} of the {len(unit.samples)} "
            f"prompts of task {task} (unit {unit.name}) that it was trained on ({shown}). Fix: train it on "
            "another split or file than the one scored (e.g. CorrSteer on MMLU auxiliary_train, scored on "
            "test), or set 'allow_train_test_overlap: true' on the method to score it anyway."
        )

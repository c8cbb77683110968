"""Concept-presence PROXY read from the unsteered model: a DiffMean detector on response-token states.

The keyword proxy (``saesteer.eval.concept``) only sees concept words; this one asks whether a response *evokes*
the concept in the model's own representation. Each (instruction, response) pair is re-read by the unsteered model
in its chat format; a response's feature is the mean block-output state of its first ``max_tokens`` tokens at
``layer``. The detector direction is the difference of the class means (concept-bearing minus concept-free
responses), the threshold the midpoint of the two classes' mean projections. Always report it as a proxy, with its
held-out accuracy (``accuracy``) on responses it was not fitted on.

>>> detector = fit_concept_detector(model, tokenizer, positives, negatives, layer=15)
>>> detector.accuracy(held_out_positives, held_out_negatives), detector.presence(prompts, outputs)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from saesteer.data.examples import encode_examples
from saesteer.errors import DataError
from saesteer.models.layers import check_layer
from saesteer.runtime.capture import capture

Pair = tuple[str, str]  # (instruction, response)


def balanced_accuracy(positive_scores: Any, negative_scores: Any, threshold: float) -> float:
    """Mean of the hit rate (positives above ``threshold``) and the correct-rejection rate (negatives at or below)."""
    high, low = np.asarray(positive_scores, dtype=float), np.asarray(negative_scores, dtype=float)
    return float(((high > threshold).mean() + (low <= threshold).mean()) / 2)


def response_features(
    model: Any, tokenizer: Any, pairs: Sequence[Pair], layer: int, *, max_tokens: int = 64, batch_size: int = 16
) -> Tensor:
    """(n, d) float64: mean block-output state at ``layer`` over each response's first ``max_tokens`` tokens."""
    layer = check_layer(model, layer)
    rows: list[Tensor] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        answers = [answer if answer.strip() else " " for _, answer in chunk]  # an empty output is still scored
        batch = encode_examples(tokenizer, [q for q, _ in chunk], answers, max_response_tokens=max_tokens)
        inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        hidden = capture(model, inputs, [layer])[layer].double()
        weights = batch.response.double()
        rows.append((hidden * weights[..., None]).sum(dim=1) / weights.sum(dim=1, keepdim=True))
    return torch.cat(rows)


@dataclass
class ConceptDetector:
    """A fitted detector (see the module docstring); ``presence`` gives 1.0 / 0.0 per response."""

    model: Any
    tokenizer: Any
    layer: int
    direction: Tensor  # unit (d,) float64
    threshold: float
    max_tokens: int
    train_accuracy: float

    @property
    def name(self) -> str:
        return f"concept-latent proxy (DiffMean detector, layer {self.layer}, unsteered re-read)"

    def scores(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """Projection of each response's mean state on the detector direction (higher = more concept)."""
        if len(prompts) != len(responses):
            raise DataError(f"{len(prompts)} prompts but {len(responses)} responses. Fix: pass one prompt per text.")
        features = response_features(
            self.model,
            self.tokenizer,
            list(zip(prompts, responses, strict=True)),
            self.layer,
            max_tokens=self.max_tokens,
        )
        return (features @ self.direction).tolist()

    def presence(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return [float(s > self.threshold) for s in self.scores(prompts, responses)]

    def accuracy(self, positives: Sequence[Pair], negatives: Sequence[Pair]) -> float:
        """Balanced accuracy on labelled pairs (held-out ones, to know how far to trust the proxy)."""
        high = self.scores([q for q, _ in positives], [r for _, r in positives])
        low = self.scores([q for q, _ in negatives], [r for _, r in negatives])
        return balanced_accuracy(high, low, self.threshold)


def fit_concept_detector(
    model: Any,
    tokenizer: Any,
    positives: Sequence[Pair],
    negatives: Sequence[Pair],
    *,
    layer: int,
    max_tokens: int = 64,
) -> ConceptDetector:
    """Fit the DiffMean detector on concept-bearing (``positives``) vs concept-free (``negatives``) responses."""
    if len(positives) < 2 or len(negatives) < 2:
        raise DataError(
            f"A concept detector needs >= 2 responses per class (got {len(positives)} and {len(negatives)}). "
            "Fix: pass more concept-bearing and concept-free (instruction, response) pairs."
        )
    with_concept = response_features(model, tokenizer, positives, layer, max_tokens=max_tokens)
    without = response_features(model, tokenizer, negatives, layer, max_tokens=max_tokens)
    difference = with_concept.mean(dim=0) - without.mean(dim=0)
    if not bool(torch.isfinite(difference).all()) or float(difference.norm()) == 0.0:
        raise DataError("The two response classes give the same mean state. Fix: check the labels of the pairs.")
    direction = difference / difference.norm()
    high, low = with_concept @ direction, without @ direction
    threshold = float((high.mean() + low.mean()) / 2)
    accuracy = balanced_accuracy(high.tolist(), low.tolist(), threshold)
    return ConceptDetector(model, tokenizer, layer, direction, threshold, max_tokens, accuracy)

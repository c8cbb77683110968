"""Concept-latent proxy labeller for the CRH sweep: does the steered TEXT evoke the concept's representation?

Each output is re-read by the UNSTEERED model in the sweep's template ("User: q\\nAssistant: output"); the score
is the mean projection onto u_hat (the concept's population axis from the training split) of the output tokens'
block-output states at the analysis layer. The threshold is calibrated per concept on the training split (midpoint
of the class means of the concept-bearing and concept-free responses, each cut to the sweep's output length) and
checked on the held-out split. Label 3 comes first, from the gibberish proxy (perplexity / distinct-2), then 2 if the
score exceeds the threshold, else 1. It reads the direction that is added, but through the unsteered model on the
generated text, so it measures whether the text evokes the concept representation, not the steering vector itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from saesteer.analysis import cylinder as crh
from saesteer.analysis.cylinder_sweep import ProxyLabeller, Sample, SweepConfig
from saesteer.data.chat import encode
from saesteer.errors import ConfigError
from saesteer.eval.concept_detector import balanced_accuracy
from saesteer.runtime.capture import capture


@dataclass(frozen=True)
class Calibration:
    """One concept's detector: unit axis, threshold, and how well it separates held-out responses."""

    u_hat: Tensor
    threshold: float
    train_accuracy: float
    heldout_accuracy: float
    mean_with: float  # training class means of the score
    mean_without: float

    def record(self) -> dict[str, float]:
        return {k: float(v) for k, v in vars(self).items() if k != "u_hat"}


@dataclass
class ConceptLatentLabeller:
    """Offline concept-latent proxy judge (see the module docstring); ``calibrate`` once per concept first."""

    model: Any
    tokenizer: Any
    max_perplexity: float = 500.0
    min_distinct: float = 0.5
    batch_size: int = 16
    name: str = field(init=False)
    calibrations: dict[str, Calibration] = field(default_factory=dict, init=False)
    _configs: dict[str, SweepConfig] = field(default_factory=dict, init=False, repr=False)
    _gibberish: ProxyLabeller = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError(
                "The concept-latent proxy needs a fast tokenizer (character offsets locate the output tokens). "
                "Fix: load the model's fast tokenizer, or use the keyword labeller."
            )
        self._gibberish = ProxyLabeller(self.model, self.tokenizer, self.max_perplexity, self.min_distinct)
        self.name = (
            f"concept-latent proxy: mean output-token projection on u_hat (unsteered re-read) > train-calibrated "
            f"threshold; gibberish perplexity>{self.max_perplexity:g}/distinct-2<{self.min_distinct:g}"
        )

    def _cut(self, text: str, max_tokens: int) -> str:
        """``text`` up to the end of its ``max_tokens + 1``-th token (the re-read needs no more)."""
        ends = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return text if len(ends) <= max_tokens + 1 else text[: ends[max_tokens][1]]

    def scores(
        self, u_hat: Tensor, config: SweepConfig, questions: Sequence[str], outputs: Sequence[str], max_tokens: int
    ) -> np.ndarray:
        """Mean <h, u_hat> over each output's first ``max_tokens`` tokens (NaN for an output with no tokens)."""
        pairs = list(dict.fromkeys(zip(questions, outputs, strict=True)))
        found: dict[tuple[str, str], float] = {}
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            texts = [config.text(q, self._cut(o, max_tokens)) for q, o in chunk]
            batch = dict(encode(self.tokenizer, texts, templated=False, return_offsets_mapping=True))
            ends = batch.pop("offset_mapping")[..., 1]  # character end of each token; padding ends at 0
            batch["position_ids"] = (batch["attention_mask"].cumsum(dim=1) - 1).clamp(min=0)
            hidden = capture(self.model, batch, [config.layer])[config.layer].to(torch.float64)
            projections = hidden @ u_hat.to(hidden)
            for row, (q, o) in enumerate(chunk):
                mine = ((ends[row] > len(config.prompt(q))) & (batch["attention_mask"][row] > 0)).nonzero().flatten()
                mine = mine[:max_tokens]
                found[(q, o)] = float(projections[row, mine].mean()) if len(mine) else float("nan")
        return np.asarray([found[p] for p in zip(questions, outputs, strict=True)])

    def calibrate(
        self, concept: str, u: Tensor, train: Sequence[Sample], test: Sequence[Sample], config: SweepConfig
    ) -> dict[str, float]:
        """Fit the threshold on ``train`` (concept-bearing vs concept-free), score ``test``; returns the record."""
        if any(s.without_concept is None for s in [*train, *test]):
            raise ConfigError("Calibration needs concept-free responses. Fix: call fill_without_concept first.")
        u_hat = u.to(torch.float64) / u.norm()
        n = config.max_new_tokens

        def split_scores(samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
            questions = [s.question for s in samples]
            with_scores = self.scores(u_hat, config, questions, [s.with_concept for s in samples], n)
            return with_scores, self.scores(u_hat, config, questions, [s.without_concept or "" for s in samples], n)

        train_with, train_without = split_scores(train)
        test_with, test_without = split_scores(test)
        threshold = float((np.nanmean(train_with) + np.nanmean(train_without)) / 2)
        calibration = Calibration(
            u_hat=u_hat,
            threshold=threshold,
            train_accuracy=balanced_accuracy(train_with, train_without, threshold),
            heldout_accuracy=balanced_accuracy(test_with, test_without, threshold),
            mean_with=float(np.nanmean(train_with)),
            mean_without=float(np.nanmean(train_without)),
        )
        self.calibrations[concept], self._configs[concept] = calibration, config
        return calibration.record()

    def __call__(self, concept: str, questions: Sequence[str], outputs: Sequence[str]) -> list[int]:
        if concept not in self.calibrations:
            raise ConfigError(
                f"The concept-latent proxy is not calibrated for {concept!r}. "
                "Fix: call calibrate(concept, u, train, test, config) first (analyze_concept does)."
            )
        calibration, config = self.calibrations[concept], self._configs[concept]
        gibberish = self._gibberish(concept, questions, outputs)
        scores = self.scores(calibration.u_hat, config, questions, outputs, config.max_new_tokens)
        return [
            crh.GIBBERISH if g == crh.GIBBERISH else crh.CONCEPT if s > calibration.threshold else crh.NORMAL
            for g, s in zip(gibberish, scores, strict=True)
        ]

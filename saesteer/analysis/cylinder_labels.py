"""Labellers for the CRH sweep beyond the keyword proxy: 1 normal answer, 2 concept present, 3 gibberish.

Label 3 always comes first, from the gibberish proxy (perplexity under the unsteered model / distinct-2).

* ``DetectorLabeller`` (the default): label 2 from a DiffMean concept detector (saesteer.eval.concept_detector)
  fitted on ``reserve`` samples set aside from the axis's training split, so neither the detector's data nor
  its read-out (chat-format response-token means) is the axis u being added; its cosine with u_hat and its
  held-out accuracy on the steered split's responses are recorded.
* ``JudgeLabeller``: label 2 from a configured judge's 0-2 concept rating (saesteer.eval.judges; the paper used
  a Llama-3.3-70B judge).
* ``ConceptLatentLabeller`` (option ``axis``): each output re-read by the UNSTEERED model in the sweep's
  template; the score is the mean projection of the output tokens' states onto u_hat, the very axis added, with a
  threshold calibrated on the axis's own training split. This makes the onset (P1) partly circular: use it only
  as a labelled comparison.
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
from saesteer.eval.concept_detector import ConceptDetector, balanced_accuracy, fit_concept_detector
from saesteer.eval.judges import Judge, JudgeItem
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
    """Axis-projection proxy (option; see the module docstring); ``calibrate`` once per concept first."""

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
            f"axis-projection proxy (reads the added axis u_hat; partly circular): mean output-token projection on "
            f"u_hat (unsteered re-read) > train-calibrated "
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


def _pairs(samples: Sequence[Sample], with_concept: bool) -> list[tuple[str, str]]:
    return [(s.question, s.with_concept if with_concept else s.without_concept or "") for s in samples]


@dataclass
class DetectorLabeller:
    """Label 2 from a DiffMean concept detector fitted on ``reserve`` samples disjoint from u's training split."""

    model: Any
    tokenizer: Any
    reserve: int = 8  # samples taken from the training pool for the detector (analyze_concept sets them aside)
    max_perplexity: float = 500.0
    min_distinct: float = 0.5
    name: str = field(init=False)
    detectors: dict[str, ConceptDetector] = field(default_factory=dict, init=False, repr=False)
    _gibberish: ProxyLabeller = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.reserve < 2:
            raise ConfigError(f"reserve={self.reserve}: the detector needs >= 2 samples. Fix: reserve >= 2.")
        self._gibberish = ProxyLabeller(self.model, self.tokenizer, self.max_perplexity, self.min_distinct)
        self.name = (
            f"concept-detector proxy: DiffMean detector on response-token states, fitted on {self.reserve} samples "
            f"disjoint from the axis's training split (unsteered re-read); gibberish perplexity>"
            f"{self.max_perplexity:g}/distinct-2<{self.min_distinct:g}"
        )

    def calibrate(
        self, concept: str, u: Tensor, train: Sequence[Sample], test: Sequence[Sample], config: SweepConfig
    ) -> dict[str, float]:
        """Fit on ``train`` (the reserved samples, not u's), check on ``test``; returns the record."""
        if any(s.without_concept is None for s in [*train, *test]):
            raise ConfigError("The detector needs concept-free responses. Fix: call fill_without_concept first.")
        detector = fit_concept_detector(
            self.model,
            self.tokenizer,
            _pairs(train, True),
            _pairs(train, False),
            layer=config.layer,
            max_tokens=config.max_new_tokens,
        )
        self.detectors[concept] = detector
        u_hat = u.to(torch.float64) / u.norm()
        return {
            "threshold": detector.threshold,
            "train_accuracy": detector.train_accuracy,
            "heldout_accuracy": detector.accuracy(_pairs(test, True), _pairs(test, False)),
            "axis_cosine": float(detector.direction @ u_hat.to(detector.direction)),
            "n_fit": float(len(train)),
        }

    def __call__(self, concept: str, questions: Sequence[str], outputs: Sequence[str]) -> list[int]:
        if concept not in self.detectors:
            raise ConfigError(
                f"The concept detector is not fitted for {concept!r}. "
                "Fix: call calibrate(concept, u, reserved, test, config) first (analyze_concept does)."
            )
        gibberish = self._gibberish(concept, questions, outputs)
        present = self.detectors[concept].presence(list(questions), list(outputs))
        return [
            crh.GIBBERISH if g == crh.GIBBERISH else crh.CONCEPT if p > 0 else crh.NORMAL
            for g, p in zip(gibberish, present, strict=True)
        ]


@dataclass
class JudgeLabeller:
    """Label 2 when a configured judge's concept rating (0-2) reaches ``concept_threshold``; 3 from the proxy."""

    judge: Judge
    gibberish: ProxyLabeller
    concept_threshold: float = 1.0  # 1: hinted / related (the CRH judge's "contains or relates to"), 2: clear
    name: str = field(init=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.concept_threshold <= 2.0:
            raise ConfigError(f"concept_threshold={self.concept_threshold} is not a 0-2 rating. Fix: use 1 or 2.")
        self.name = (
            f"judge {getattr(self.judge, 'name', type(self.judge).__name__)}: concept rating>="
            f"{self.concept_threshold:g}; gibberish {self.gibberish.name.split(' + ')[0]}"
        )

    def __call__(self, concept: str, questions: Sequence[str], outputs: Sequence[str]) -> list[int]:
        gibberish = self.gibberish(concept, questions, outputs)
        items = [
            JudgeItem(concept, q, o)
            for q, o, g in zip(questions, outputs, gibberish, strict=True)
            if g != crh.GIBBERISH
        ]
        ratings = iter(self.judge.rate(items)) if items else iter([])
        return [
            crh.GIBBERISH
            if g == crh.GIBBERISH
            else crh.CONCEPT
            if next(ratings)["concept"] >= self.concept_threshold
            else crh.NORMAL
            for g in gibberish
        ]


LABELLERS = ("detector", "judge", "axis", "keywords")


def make_labeller(
    kind: str,
    model: Any,
    tokenizer: Any,
    *,
    reserve: int = 8,
    judge: Judge | None = None,
    concept_threshold: float = 2,
    max_perplexity: float = 500.0,
    min_distinct: float = 0.5,
) -> DetectorLabeller | JudgeLabeller | ConceptLatentLabeller | ProxyLabeller:
    """A sweep labeller by name: detector (default), judge (needs ``judge``), axis (projection on u_hat), keywords.

    ``concept_threshold`` is the keyword rating (keywords) or the judge's concept rating (judge) needed for 2.
    """
    ppl, distinct = max_perplexity, min_distinct
    if kind == "detector":
        return DetectorLabeller(model, tokenizer, reserve, max_perplexity=ppl, min_distinct=distinct)
    if kind == "judge":
        if judge is None:
            raise ConfigError("The judge labeller needs a judge. Fix: pass --judge hf:MODEL or openai:MODEL@URL.")
        return JudgeLabeller(judge, ProxyLabeller(model, tokenizer, ppl, distinct), float(concept_threshold))
    if kind == "axis":
        return ConceptLatentLabeller(model, tokenizer, max_perplexity=ppl, min_distinct=distinct)
    if kind == "keywords":
        return ProxyLabeller(model, tokenizer, ppl, distinct, concept_threshold=int(concept_threshold))
    raise ConfigError(f"Unknown labeller {kind!r}. Fix: use one of {', '.join(LABELLERS)}.")

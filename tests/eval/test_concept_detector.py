"""The DiffMean concept-presence proxy on the real model: separates held-out concept responses, clear errors."""

from __future__ import annotations

import pytest

from saesteer.data import read_rows, sample_path
from saesteer.errors import DataError
from saesteer.eval.concept_detector import fit_concept_detector


def _pairs(concept_id: int) -> list[tuple[str, str]]:
    rows = read_rows(sample_path("axbench/train.jsonl"))
    return [(r["input"], r["output"]) for r in rows if r["concept_id"] == concept_id]


def test_detector_separates_held_out_code_responses_from_concept_free_ones(smollm2):
    model, tokenizer = smollm2
    positives, negatives = _pairs(2), _pairs(-1)[:36]  # C/C++ syntax vs the shared concept-free responses
    detector = fit_concept_detector(model, tokenizer, positives[:20], negatives[:20], layer=15, max_tokens=32)
    assert detector.train_accuracy >= 0.9
    assert detector.accuracy(positives[20:], negatives[20:]) >= 0.8
    scores = detector.scores([q for q, _ in positives[20:24]], [r for _, r in positives[20:24]])
    assert len(scores) == 4 and "proxy" in detector.name


def test_detector_rejects_too_few_responses_and_mismatched_lengths(smollm2):
    model, tokenizer = smollm2
    with pytest.raises(DataError, match="needs >= 2 responses"):
        fit_concept_detector(model, tokenizer, _pairs(2)[:1], _pairs(-1)[:5], layer=15)
    detector = fit_concept_detector(model, tokenizer, _pairs(2)[:4], _pairs(-1)[:4], layer=15, max_tokens=8)
    with pytest.raises(DataError, match="one prompt per text"):
        detector.presence(["a", "b"], ["only one"])

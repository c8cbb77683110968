"""Concept-latent proxy labeller on the real SmolLM2: calibration separates held-out responses; gibberish first."""

from __future__ import annotations

import pytest

from saesteer.analysis import cylinder as crh
from saesteer.analysis.cylinder_labels import ConceptLatentLabeller
from saesteer.analysis.cylinder_sweep import Sample, SweepConfig, difference_vectors, load_axbench_samples
from saesteer.data import read_rows, sample_path
from saesteer.errors import ConfigError

CONFIG = SweepConfig(layer=15, n_test=6, max_new_tokens=16)


def _samples() -> tuple[str, list[Sample]]:
    """Concept 9 (fantastical worlds) responses, each paired with an AxBench concept-free response (both cut short)."""
    concept, positives = load_axbench_samples(9)
    negatives = [r["output"] for r in read_rows(sample_path("axbench/train.jsonl")) if int(r["concept_id"]) == -1]
    return concept, [
        Sample(s.question, s.with_concept[:160], n[:160]) for s, n in zip(positives[:16], negatives, strict=False)
    ]


def test_latent_labeller_separates_held_out_responses_and_gibberish_wins(smollm2):
    model, tokenizer = smollm2
    concept, samples = _samples()
    train, test = samples[:10], samples[10:]
    r_with, r_no = difference_vectors(model, tokenizer, train, CONFIG)
    labeller = ConceptLatentLabeller(model, tokenizer)
    with pytest.raises(ConfigError, match="Fix:"):
        labeller(concept, ["q"], ["text"])
    fit = labeller.calibrate(concept, (r_with - r_no).mean(0), train, test, CONFIG)
    assert fit["heldout_accuracy"] > 0.6 and fit["mean_with"] > fit["threshold"] > fit["mean_without"]
    questions = [s.question for s in test]
    labels = labeller(concept, questions * 2, [s.with_concept for s in test] + [s.without_concept or "" for s in test])
    assert labels[: len(test)].count(crh.CONCEPT) > labels[len(test) :].count(crh.CONCEPT)
    loop = "the realm the realm the realm the realm the realm the realm the realm the realm"
    assert labeller(concept, questions[:2], ["", loop]) == [crh.GIBBERISH, crh.GIBBERISH]
    assert labeller.name.startswith("concept-latent proxy")

"""CRH sweep labellers on the real SmolLM2: detector (default), judge and axis projection; gibberish first."""

from __future__ import annotations

import pytest

from saesteer.analysis import cylinder as crh
from saesteer.analysis.cylinder_labels import ConceptLatentLabeller, DetectorLabeller, JudgeLabeller, make_labeller
from saesteer.analysis.cylinder_sweep import (
    ProxyLabeller,
    Sample,
    SweepConfig,
    analyze_concept,
    difference_vectors,
    load_axbench_samples,
)
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
    assert labeller.name.startswith("axis-projection proxy") and "circular" in labeller.name


def test_detector_labeller_separates_held_out_responses_and_records_its_angle_to_u(smollm2):
    model, tokenizer = smollm2
    concept, samples = _samples()
    reserved, test = samples[:10], samples[10:]
    labeller = DetectorLabeller(model, tokenizer, reserve=10)
    with pytest.raises(ConfigError, match="Fix:"):
        labeller(concept, ["q"], ["text"])
    r_with, r_no = difference_vectors(model, tokenizer, samples[:6], CONFIG)
    fit = labeller.calibrate(concept, (r_with - r_no).mean(0), reserved, test, CONFIG)
    assert fit["heldout_accuracy"] > 0.6 and -1 <= fit["axis_cosine"] <= 1 and fit["n_fit"] == 10
    questions = [s.question for s in test]
    labels = labeller(concept, questions * 2, [s.with_concept for s in test] + [s.without_concept or "" for s in test])
    assert labels[: len(test)].count(crh.CONCEPT) > labels[len(test) :].count(crh.CONCEPT)
    assert labeller(concept, questions[:1], [""]) == [crh.GIBBERISH]
    assert "disjoint from the axis" in labeller.name


class SpyDetector(DetectorLabeller):
    def calibrate(self, concept, u, train, test, config):  # type: ignore[no-untyped-def]
        self.seen = ([s.question for s in train], [s.question for s in test])
        return super().calibrate(concept, u, train, test, config)


def test_analyze_concept_fits_the_detector_on_samples_kept_out_of_the_axis(smollm2):
    model, tokenizer = smollm2
    concept, samples = _samples()
    config = SweepConfig(layer=6, n_test=2, steps=2, n_rho=1, max_new_tokens=4, batch_size=8)
    labeller = SpyDetector(model, tokenizer, reserve=4)
    run = analyze_concept(model, tokenizer, concept, samples[:9], config, labeller)
    fitted, checked = labeller.seen
    assert len(fitted) == 4 and checked == run.questions and not set(fitted) & set(run.questions)
    assert run.v_d_train.shape[0] == 9 - 2 - 4  # u is DiffMean over the remaining 3 samples only
    assert run.calibration is not None and "axis_cosine" in run.calibration


class FakeJudge:
    name = "fake"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def rate(self, items):  # type: ignore[no-untyped-def]
        self.asked += [i.output for i in items]
        return [{"concept": 2.0 if "dragon" in i.output else 0.0} for i in items]


def test_judge_labeller_maps_ratings_and_never_sends_gibberish(smollm2):
    model, tokenizer = smollm2
    judge = FakeJudge()
    labeller = JudgeLabeller(judge, ProxyLabeller(model, tokenizer))
    outputs = ["A dragon flew over the castle at dawn.", "Make a guest list and send invitations.", ""]
    assert labeller("dragons", ["q"] * 3, outputs) == [crh.CONCEPT, crh.NORMAL, crh.GIBBERISH]
    assert judge.asked == outputs[:2] and labeller.name.startswith("judge fake")


def test_make_labeller_defaults_and_errors(smollm2):
    model, tokenizer = smollm2
    assert isinstance(make_labeller("detector", model, tokenizer), DetectorLabeller)
    assert isinstance(make_labeller("axis", model, tokenizer), ConceptLatentLabeller)
    with pytest.raises(ConfigError, match="Fix:"):
        make_labeller("judge", model, tokenizer)
    with pytest.raises(ConfigError, match="Fix:"):
        make_labeller("latent-ish", model, tokenizer)

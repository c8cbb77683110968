"""CRH sweep on the real SmolLM2 with a tiny grid: vectors, per-row prefill steering, labels, files."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from saesteer.analysis import cylinder as crh
from saesteer.analysis.cylinder_results import save_results
from saesteer.analysis.cylinder_sweep import (
    ProxyLabeller,
    Sample,
    SweepConfig,
    analyze_concept,
    difference_vectors,
    load_axbench_samples,
    load_concepts,
    steered_outputs,
    summarize,
)
from saesteer.errors import ConfigError, DataError
from saesteer.generation import generate

CONCEPT = "references to rental services and associated equipment"
SAMPLES = [
    Sample("How do I plan a party?", "Rent tables and a sound system from a rental service.", "Make a guest list."),
    Sample("What should I pack for camping?", "Rental shops lend tents and equipment.", "Pack a tent and water."),
    Sample("How can I move house cheaply?", "Hire a rental van and equipment services.", "Ask friends to help."),
    Sample("How do I start painting?", "Rent easels from an art equipment rental.", "Buy brushes and paint."),
]
TINY = SweepConfig(layer=6, n_test=2, steps=2, n_rho=2, max_new_tokens=4, batch_size=8)


def test_difference_vectors_match_hidden_states_of_unpadded_texts(smollm2):
    model, tokenizer = smollm2
    r_with, r_no = difference_vectors(model, tokenizer, SAMPLES[:2], TINY)
    for row, text in enumerate(TINY.text(s.question, s.with_concept) for s in SAMPLES[:2]):
        ids = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**ids, output_hidden_states=True).hidden_states[TINY.layer + 1][0, -1]
        assert torch.allclose(r_with[row].float(), hidden, atol=1e-3, rtol=1e-3)
    assert not torch.allclose(r_with, r_no)


def test_zero_rows_of_a_per_row_sweep_equal_unsteered_generation_and_all_positions_steer_generated_tokens(smollm2):
    model, tokenizer = smollm2
    prompts = [TINY.prompt(s.question) for s in SAMPLES[:2]] * 2
    vectors = torch.zeros(4, model.config.hidden_size)
    vectors[2:] = 200 * torch.randn(2, model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    steered = steered_outputs(model, tokenizer, prompts, vectors, TINY)
    everywhere = steered_outputs(model, tokenizer, prompts, vectors, replace(TINY, positions="all"))
    plain = generate(model, tokenizer, prompts[:2], max_new_tokens=TINY.max_new_tokens, chat=False)
    assert steered[:2] == plain and everywhere[:2] == plain
    assert steered[2:] != plain and everywhere[2:] != plain
    for prompt_only, all_tokens in zip(steered[2:], everywhere[2:], strict=True):
        assert prompt_only != all_tokens  # decode steps are steered too under "all"


def test_proxy_labeller_marks_normal_concept_and_gibberish(smollm2):
    model, tokenizer = smollm2
    labeller = ProxyLabeller(model, tokenizer)
    texts = [
        "Make a list of guests and send invitations a week ahead.",
        "You can rent tables from a rental service that also lends sound equipment.",
        "rental rental rental rental rental rental rental rental",
        "",
    ]
    assert labeller(CONCEPT, ["How do I plan a party?"] * 4, texts) == [1, 2, 3, 3]
    one_keyword = ["Ask a rental shop near you for a quote before the party."]
    assert labeller(CONCEPT, ["How do I plan a party?"], one_keyword) == [1]
    lenient = ProxyLabeller(model, tokenizer, concept_threshold=1)
    assert lenient(CONCEPT, ["How do I plan a party?"], one_keyword) == [2]
    assert "rating>=1" in lenient.name and "rating>=2" in labeller.name


def test_analyze_concept_end_to_end_and_results_files(smollm2, tmp_path):
    model, tokenizer = smollm2
    run = analyze_concept(model, tokenizer, CONCEPT, SAMPLES, TINY, ProxyLabeller(model, tokenizer))
    assert run.labels.shape == (2, 2, 2) and set(np.unique(run.labels)) <= {1, 2, 3}
    assert len(run.outputs) == 2 and all(len(o) == 2 and len(o[0]) == 2 for o in run.outputs)
    assert np.allclose(np.asarray(run.lengths) / run.norm_u, [1.5, 3.0])
    cos, _ = crh.angles(run.v_d, run.u)
    assert torch.allclose(cos, run.cos)
    assert torch.allclose(run.u, run.v_d_train.mean(0))  # DiffMean over the two training samples
    summary = summarize([run], permutations=10)
    assert set(summary["label_fractions"]) == {"1", "2", "3"} and summary["n_samples"] == 2
    paths = save_results([run], summary, TINY, tmp_path, labeller="proxy", model_name="smollm2")
    saved = json.loads(paths["results"].read_text())
    assert saved["concepts"][0]["samples"][0]["labels"] == run.labels[0].tolist()
    assert all(paths[k].stat().st_size > 1000 for k in ("heatmaps", "angle", "phase"))


def test_bad_inputs_name_the_fix():
    with pytest.raises(ConfigError, match="Fix:"):
        SweepConfig(template="Q: {question}")
    with pytest.raises(DataError, match="Fix:"):
        load_axbench_samples(99)
    with pytest.raises(ConfigError, match="Fix:"):
        load_concepts("rental")
    with pytest.raises(ConfigError, match="Fix:"):
        SweepConfig(positions="generated")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Fix:"):
        ProxyLabeller(None, None, concept_threshold=3)
    concept, samples = load_axbench_samples(0)
    assert concept == CONCEPT and len(samples) == 36 and all(s.without_concept is None for s in samples)

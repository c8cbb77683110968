"""CAA's A/B protocol: which tokens it steers on a chat prompt, and the paper's per-layer normalisation."""

from __future__ import annotations

import pytest
import torch

from saesteer.data.pairs import load_contrast_data
from saesteer.errors import DataError
from saesteer.eval.ab import _decision, evaluate_ab, normalise_across_behaviours
from saesteer.runtime import AddVector, ExplicitMask, Intervention, steer
from saesteer.vectors import SteeringVector

ITEMS = [
    {"question": "Is it? (A) yes (B) no", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(B)"},
    {"question": "Do it? (A) no (B) sure", "answer_matching_behavior": "(B)", "answer_not_matching_behavior": "(A)"},
]


def test_ab_steers_the_generation_prompts_last_token_and_the_answer_paren_only(smollm2):
    model, tokenizer = smollm2
    torch.manual_seed(0)
    vector = torch.randn(model.config.hidden_size)
    result = evaluate_ab(model, tokenizer, ITEMS, SteeringVector(vector, layer=3), multipliers=[6.0], progress=False)
    for record, item in zip(result.records, load_contrast_data(ITEMS), strict=True):
        ids, match, other = _decision(tokenizer, item)
        assert tokenizer.convert_ids_to_tokens(ids[-5:]) == ["<|im_start|>", "ass", "istant", "Ċ", "("]
        mask = torch.zeros(1, len(ids), dtype=torch.bool)
        mask[0, -2:] = True  # CAA: from the end marker's last token ("\n" of <|im_start|>assistant\n) on
        with torch.no_grad(), steer(model, Intervention(3, AddVector(vector, 6.0), ExplicitMask(mask))):
            p = model(input_ids=torch.tensor([ids])).logits[0, -1].double().softmax(-1)
        assert record["p_matching"] == pytest.approx(float(p[match] / (p[match] + p[other])), abs=1e-5)


def test_vectors_are_rescaled_per_layer_to_the_mean_norm_across_behaviours():
    a, b = torch.tensor([3.0, 4.0]), torch.tensor([0.0, 1.0])  # norms 5 and 1 at layer 2
    vectors = {
        "sycophancy": {2: SteeringVector(a, layer=2), 5: SteeringVector(2 * a, layer=5)},
        "refusal": {2: SteeringVector(b, layer=2), 5: SteeringVector(10 * b, layer=5)},
    }
    done = normalise_across_behaviours(vectors)
    assert done["sycophancy"][2].norm == pytest.approx(3.0) and done["refusal"][2].norm == pytest.approx(3.0)
    assert done["sycophancy"][5].norm == pytest.approx(10.0) and done["refusal"][5].norm == pytest.approx(10.0)
    assert torch.allclose(done["refusal"][2].vector, 3 * b) and done["sycophancy"][2].metrics["raw_norm"] == 5.0
    assert vectors["sycophancy"][2].norm == 5.0  # the inputs are left as they were
    with pytest.raises(DataError, match="same layers"):
        normalise_across_behaviours({"x": {2: SteeringVector(a, layer=2)}, "y": {3: SteeringVector(a, layer=3)}})
    with pytest.raises(DataError, match="zero"):
        normalise_across_behaviours({"x": {2: SteeringVector(a, layer=2)}, "y": {2: SteeringVector(0 * a, layer=2)}})

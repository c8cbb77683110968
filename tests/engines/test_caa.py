"""CAA on the real bundled model: the paper's A/B protocol and reading positions."""

from __future__ import annotations

import json

import pytest
import torch

from saesteer.data import load_contrast_data, sample_path
from saesteer.engines import caa
from saesteer.engines.caa import fitting
from saesteer.errors import ConfigError, DataError
from saesteer.eval.ab import evaluate_ab
from saesteer.vectors import SteeringVector


@pytest.fixture(scope="module")
def refusal_vector(smollm2) -> SteeringVector:
    model, tokenizer = smollm2
    return caa.fit_layers(model, tokenizer, sample_path("caa/refusal_generate.json"), layers=[15], progress=False)[15]


def test_ab_items_are_read_at_the_answer_letter_token(smollm2):
    _, tokenizer = smollm2
    items = load_contrast_data(sample_path("caa/sycophancy_generate.json"))[:4]
    spans = [s for item in items for s in fitting._spans(tokenizer, item, "auto", None)]
    batch = tokenizer(
        [s.text for s in spans],
        return_tensors="pt",
        padding=True,
        add_special_tokens=False,
        return_offsets_mapping=True,
    )
    weights = fitting._token_weights(batch["offset_mapping"], batch["attention_mask"].bool(), spans, "auto")
    assert torch.equal(weights.sum(dim=1), torch.ones(len(spans)))
    letters = [tokenizer.decode([int(batch["input_ids"][row, weights[row].argmax()])]) for row in range(len(spans))]
    expected = [a.strip("() ") for item in items for a in (item.matching, item.not_matching)]
    assert letters == expected


def test_caa_vector_is_the_mean_of_pair_differences(smollm2, refusal_vector):
    model, tokenizer = smollm2
    items = load_contrast_data(sample_path("caa/refusal_generate.json"))[:6]
    spans = [fitting._spans(tokenizer, item, "auto", None) for item in items]
    pos = caa.read_activations(model, tokenizer, [s[0] for s in spans], [15], "auto")[15]
    neg = caa.read_activations(model, tokenizer, [s[1] for s in spans], [15], "auto")[15]
    small = caa.fit_layers(model, tokenizer, items, layers=15, progress=False, batch_size=4)[15]
    torch.testing.assert_close(small.vector.double(), (pos - neg).mean(0), atol=1e-4, rtol=1e-4)
    assert refusal_vector.vector.shape == (576,)
    assert refusal_vector.config["n_pairs"] == 64 and refusal_vector.config["data_format"] == "ab"


def test_ab_protocol_reports_normalised_p_matching_and_steering_moves_it(smollm2, refusal_vector):
    """The paper's A/B protocol on held-out items. SmolLM2 is at chance on this format (known ground);
    the test checks the protocol, and that the multiplier moves p(matching) in the vector's direction."""
    model, tokenizer = smollm2
    test_items = json.loads(sample_path("caa/refusal_test_ab.json").read_text())[:16]
    result = evaluate_ab(
        model, tokenizer, test_items, refusal_vector, multipliers=[-4.0, 0.0, 4.0], progress=False, batch_size=48
    )
    assert len(result.records) == 48
    assert all(0.0 <= r["p_matching"] <= 1.0 for r in result.records)
    assert 0.3 < result.p_matching[0.0] < 0.7
    assert result.p_matching[-4.0] < result.p_matching[0.0] < result.p_matching[4.0]
    unsteered = evaluate_ab(model, tokenizer, test_items, multipliers=[0.0], progress=False)
    assert unsteered.p_matching[0.0] == pytest.approx(result.p_matching[0.0], abs=1e-4)


def test_completion_pairs_with_prompts_and_normalisation(smollm2):
    model, tokenizer = smollm2
    pairs = [
        {"prompt": "How do you feel?", "positive": "Wonderful, thank you!", "negative": "Terrible, go away."},
        {"prompt": "How was the film?", "positive": "A delight from start to end.", "negative": "A dreadful bore."},
    ]
    vectors = caa.fit_layers(model, tokenizer, pairs, layers=[4, 6], progress=False)
    assert set(vectors) == {4, 6} and vectors[4].config["data_format"] == "completion"
    raw = caa.fit_layers(
        model,
        tokenizer,
        [{"positive": p["positive"], "negative": p["negative"]} for p in pairs],
        layers=[4],
        progress=False,
    )[4]
    scaled = caa.normalize_to_mean_norm([vectors[4], raw])
    assert scaled[0].norm == pytest.approx(scaled[1].norm, rel=1e-5)
    assert scaled[0].norm == pytest.approx((vectors[4].norm + raw.norm) / 2, rel=1e-5)


def test_bad_caa_input(smollm2, tmp_path):
    model, tokenizer = smollm2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        caa.fit_layers(model, tokenizer, empty, layers=[3])
    with pytest.raises(DataError, match="mixes"):
        caa.fit_layers(
            model,
            tokenizer,
            [
                {"positive": "a", "negative": "b"},
                {"question": "q (A) x (B) y", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(B)"},
            ],
            layers=[3],
        )
    with pytest.raises(ConfigError, match="A/B"):
        caa.fit_layers(model, tokenizer, [{"positive": "a", "negative": "b"}], layers=[3], read="answer")
    with pytest.raises(Exception, match="out of range"):
        caa.fit_layers(model, tokenizer, [{"positive": "a", "negative": "b"}], layers=[99])


def test_shared_instruction_cache_gives_the_same_probabilities_as_full_prompts(smollm2, refusal_vector):
    from saesteer.runtime import AfterInstruction

    model, tokenizer = smollm2
    items = json.loads(sample_path("caa/refusal_test_ab.json").read_text())[:6]
    cached = evaluate_ab(model, tokenizer, items, refusal_vector, multipliers=[-4.0, 4.0], progress=False)
    full = evaluate_ab(
        model, tokenizer, items, refusal_vector, multipliers=[-4.0, 4.0], progress=False, positions=AfterInstruction()
    )  # same tokens, but run as whole prompts
    for a, b in zip(cached.records, full.records, strict=True):
        assert a["multiplier"] == b["multiplier"] and a["item"] == b["item"]
        assert a["p_matching"] == pytest.approx(b["p_matching"], abs=1e-5)


def test_axbench_diffmean_is_unit_norm_over_prompt_and_response_tokens_times_max_act(smollm2):
    """AxBench's DiffMean: token-pooled means of every token after the chat prefix (instruction included),
    unit-normalised; the stored vector is max_act * w with max_act the largest token projection."""
    from saesteer.data.chat import chat_prompt
    from saesteer.engines.caa.diffmean import chat_prefix_length, fit_diffmean
    from saesteer.runtime.capture import capture

    model, tokenizer = smollm2
    positives = [("Name a tool.", "A rented ladder from the rental shop."), ("Plan a party.", "Rent the chairs.")]
    negatives = [("Name a tool.", "A hammer."), ("Plan a party.", "Invite friends and cook.")]
    vector = fit_diffmean(model, tokenizer, positives, negatives, layer=6)
    prefix = chat_prefix_length(tokenizer)

    def states(texts):
        rows = []
        for prompt, response in texts:
            ids = tokenizer(chat_prompt(tokenizer, prompt) + response, return_tensors="pt", add_special_tokens=False)
            rows.append(capture(model, dict(ids), [6])[6][0, prefix:].double())
        return torch.cat(rows)

    pos, neg = states(positives), states(negatives)
    direction = pos.mean(dim=0) - neg.mean(dim=0)
    direction = direction / direction.norm()
    max_act = round(float((torch.cat([pos, neg]) @ direction).max()), 3)
    assert vector.config["max_act"] == max_act > 0 and vector.norm == pytest.approx(max_act, rel=1e-5)
    assert torch.allclose(vector.vector.double() / max_act, direction, atol=1e-4)
    assert vector.positions == "all" and vector.method == "diffmean" and vector.layer == 6
    user = tokenizer("<|im_start|>user\n", add_special_tokens=False)["input_ids"]
    framed = tokenizer(chat_prompt(tokenizer, "1"), add_special_tokens=False)["input_ids"]
    assert framed[prefix - len(user) : prefix] == user  # reading starts at the user's text
    with pytest.raises(DataError, match="Fix:"):
        fit_diffmean(model, tokenizer, positives, [], layer=6)

"""The steer() context on the real model: per-row batching, cleanup on every exit path, bad input."""

from __future__ import annotations

import pytest
import torch

from saesteer.errors import ConfigError, LayerError, VectorError
from saesteer.runtime import steer
from tests.conftest import chat_batch, hook_count

PROMPTS = ["How was your weekend?", "Describe a typical morning in a busy city.", "Why?"]


@pytest.fixture(scope="module")
def direction(smollm2) -> torch.Tensor:
    torch.manual_seed(1)
    vector = torch.randn(smollm2[0].config.hidden_size)
    return 10 * vector / vector.norm()


def test_per_row_alpha_in_one_batch_equals_each_row_alone(smollm2, direction):
    model, tokenizer = smollm2
    alphas = [-3.0, 0.0, 3.0]
    batch = chat_batch(tokenizer, PROMPTS)
    with torch.no_grad(), steer(model, direction, layer=10, alpha=alphas, positions="after_prompt"):
        together = model.generate(
            **batch, max_new_tokens=8, do_sample=False, output_scores=True, return_dict_in_generate=True
        )
    for row, (prompt, alpha) in enumerate(zip(PROMPTS, alphas, strict=True)):
        single = chat_batch(tokenizer, [prompt])
        with torch.no_grad(), steer(model, direction, layer=10, alpha=alpha, positions="after_prompt"):
            alone = model.generate(
                **single, max_new_tokens=8, do_sample=False, output_scores=True, return_dict_in_generate=True
            )
        width = single["input_ids"].shape[1]
        assert together.sequences[row, -8:].tolist() == alone.sequences[0, width:].tolist()
        for step_together, step_alone in zip(together.scores, alone.scores, strict=True):
            torch.testing.assert_close(step_together[row], step_alone[0], atol=2e-3, rtol=1e-4)


def test_per_row_vectors_match_separate_calls(smollm2, direction):
    model, tokenizer = smollm2
    other = torch.roll(direction, 7)
    batch = chat_batch(tokenizer, PROMPTS[:2])
    with torch.no_grad(), steer(model, [direction, other], layer=10, alpha=2.0):
        both = model(**batch).logits
    for row, vector in enumerate([direction, other]):
        with torch.no_grad(), steer(model, vector, layer=10, alpha=2.0):
            alone = model(**batch).logits[row]
        torch.testing.assert_close(both[row], alone)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_hooks_are_removed_after_an_exception_and_logits_are_bit_identical(smollm2, direction, error):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, PROMPTS)
    hooks = hook_count(model)
    with torch.no_grad():
        before = model(**batch).logits
    with pytest.raises(type(error)), steer(model, direction, layer=5, alpha=8.0):
        model(**batch)
        assert hook_count(model) > hooks
        raise error
    assert hook_count(model) == hooks
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, before)


def test_an_error_raised_inside_a_hook_mid_generate_leaves_the_model_clean(smollm2, direction):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, PROMPTS)  # 3 rows, but 2 per-row alphas: the hook raises
    hooks = hook_count(model)
    with torch.no_grad():
        before = model(**batch).logits
    with pytest.raises(VectorError, match="per-row"), steer(model, direction, layer=5, alpha=[1.0, 2.0]):
        model.generate(**batch, max_new_tokens=3)
    assert hook_count(model) == hooks
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, before)


def test_steering_changes_generation_and_alpha_zero_does_not(smollm2, direction):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, PROMPTS[:1])
    with torch.no_grad():
        plain = model(**batch).logits
        with steer(model, direction, layer=10, alpha=0.0):
            zero = model(**batch).logits
        with steer(model, direction, layer=10, alpha=4.0, hook_point="resid_pre"):
            pushed = model(**batch).logits
    assert torch.equal(plain, zero)
    assert (pushed - plain).abs().max() > 1e-2


def test_sublayer_hook_points_edit_what_attention_and_mlp_add(smollm2):
    """attn_out / mlp_out steer the sublayer outputs: adding v to what the MLP writes equals adding it to
    the block output (the MLP output is the block's last addition), while attn_out differs from both."""
    model, tokenizer = smollm2
    direction = torch.randn(576, generator=torch.Generator().manual_seed(1))
    batch = chat_batch(tokenizer, PROMPTS[:2])
    found = {}
    with torch.no_grad():
        for point in ("resid_post", "mlp_out", "attn_out"):
            with steer(model, direction, layer=10, alpha=2.0, hook_point=point):
                found[point] = model(**batch).logits
        plain = model(**batch).logits
    assert torch.allclose(found["mlp_out"], found["resid_post"], atol=1e-4)
    assert (found["attn_out"] - found["resid_post"]).abs().max() > 1e-3
    assert (found["attn_out"] - plain).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"layer": 30}, LayerError, "30 decoder layers"),
        ({"layer": 3, "vector": torch.ones(512)}, VectorError, "hidden size 576"),
        ({"layer": 3, "vector": torch.full((576,), float("nan"))}, VectorError, "NaN"),
        ({"layer": 3, "alpha": float("inf")}, VectorError, "alpha"),
        ({"layer": 3, "vector": torch.ones(2, 576), "alpha": [1.0, 2.0, 3.0]}, VectorError, "per-row"),
        ({"layer": 3, "vector": torch.ones(1, 2, 576)}, VectorError, "shape"),
        ({"layer": None}, ConfigError, "layer=L"),
        ({"layer": 3, "positions": "somewhere"}, ConfigError, "position policy"),
        ({"layer": 3, "hook_point": "attn_in"}, ConfigError, "hook point"),
    ],
)
def test_bad_input_is_a_clear_error_and_leaves_no_hook(smollm2, kwargs, error, message):
    model, _ = smollm2
    hooks = hook_count(model)
    vector = kwargs.pop("vector", torch.ones(576))
    with pytest.raises(error, match=message), steer(model, vector, **kwargs):
        pass
    assert hook_count(model) == hooks

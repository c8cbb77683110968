"""Folding a steering vector into the weights: plain transformers reproduces runtime steering exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Gemma2Config,
    Gemma2ForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from saesteer.errors import ConfigError, UnknownArchitectureError
from saesteer.interop import fold_vector
from saesteer.interop.fold import RECORD
from saesteer.runtime import steer
from saesteer.vectors import SteeringVector
from tests.conftest import chat_batch, hook_count

PROMPTS = ["Tell me about your favourite food.", "What should I do this weekend?"]
LAYER = 8


def _direction(width: int, norm: float, seed: int = 0) -> torch.Tensor:
    vector = torch.randn(width, generator=torch.Generator().manual_seed(seed))
    return norm * vector / vector.norm()


def _generate(model: Any, batch: dict[str, torch.Tensor]) -> list[int]:
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=20, do_sample=False)
    return out[0, batch["input_ids"].shape[1] :].tolist()


@pytest.fixture(scope="module")
def folded(smollm2, tmp_path_factory) -> tuple[SteeringVector, Path, torch.Tensor, torch.Tensor]:
    """Fold once; keep the original's logits from before and after folding."""
    model, tokenizer = smollm2
    vector = SteeringVector(_direction(model.config.hidden_size, 8.0), layer=LAYER)
    batch = chat_batch(tokenizer, PROMPTS[:1])
    with torch.no_grad():
        before = model(**batch).logits
    out = fold_vector(model, vector, 1.0, tmp_path_factory.mktemp("fold") / "folded", tokenizer=tokenizer)
    with torch.no_grad():
        after = model(**batch).logits
    return vector, out, before, after


@pytest.mark.slow
def test_folded_checkpoint_generates_exactly_like_runtime_steering(smollm2, folded):
    model, tokenizer = smollm2
    vector, out, _, _ = folded
    plain = AutoModelForCausalLM.from_pretrained(out)
    assert plain.config.mlp_bias is True
    assert torch.equal(plain.model.layers[LAYER].mlp.down_proj.bias, vector.vector)
    assert not plain.model.layers[LAYER - 1].mlp.down_proj.bias.any()
    for prompt in PROMPTS:
        batch = chat_batch(tokenizer, [prompt])
        assert bool(batch["attention_mask"].all())  # one prompt at a time: no padding
        with steer(model, vector, layer=LAYER, alpha=1.0, positions="all"):
            steered = _generate(model, batch)
        assert _generate(plain, batch) == steered
        assert _generate(model, batch) != steered


def test_folded_dir_has_tokenizer_and_record(smollm2, folded):
    _, tokenizer = smollm2
    _, out, _, _ = folded
    assert AutoTokenizer.from_pretrained(out)(PROMPTS[0])["input_ids"] == tokenizer(PROMPTS[0])["input_ids"]
    record = json.loads((out / RECORD).read_text())
    assert record["layer"] == LAYER and record["alpha"] == 1.0 and record["block_bias"] == "mlp.down_proj.bias"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # staging dir renamed away


def test_original_model_is_unchanged(smollm2, folded):
    model, _ = smollm2
    _, _, before, after = folded
    assert torch.equal(before, after)
    assert model.config.mlp_bias is False
    assert model.model.layers[LAYER].mlp.down_proj.bias is None
    assert hook_count(model) == 0


def _tiny(kind: str) -> Any:
    torch.manual_seed(0)
    shared = {"vocab_size": 97, "num_hidden_layers": 3, "num_attention_heads": 4}
    if kind == "llama":
        return LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_key_value_heads=2, **shared))
    if kind == "gpt2":
        return GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=3, n_head=4, vocab_size=97))
    return GPTNeoXForCausalLM(GPTNeoXConfig(hidden_size=32, intermediate_size=64, **shared))


@pytest.mark.parametrize("kind", ["llama", "gpt2", "gpt_neox"])
def test_tiny_models_fold_to_the_runtime_logits(tmp_path: Path, kind: str):
    model = _tiny(kind).eval()
    vector = SteeringVector(_direction(32, 4.0, seed=3), layer=1)
    ids = torch.randint(0, 97, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain_logits = model(input_ids=ids).logits
        with steer(model, vector, alpha=-1.5, positions="all"):
            steered = model(input_ids=ids).logits
        folded = AutoModelForCausalLM.from_pretrained(fold_vector(model, vector, -1.5, tmp_path / kind))
        torch.testing.assert_close(folded(input_ids=ids).logits, steered, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(plain_logits, steered, atol=1e-3)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (
            Gemma2ForCausalLM(
                Gemma2Config(
                    hidden_size=32,
                    intermediate_size=64,
                    num_hidden_layers=2,
                    num_attention_heads=4,
                    num_key_value_heads=2,
                    head_dim=8,
                    vocab_size=97,
                )
            ),
            "post_feedforward_layernorm",
        ),
        (
            Qwen2ForCausalLM(
                Qwen2Config(
                    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, vocab_size=97
                )
            ),
            "no bias",
        ),
    ],
    ids=["gemma2", "qwen2"],
)
def test_unsupported_architectures_are_refused(tmp_path: Path, model: Any, match: str):
    vector = SteeringVector(torch.ones(32), layer=1)
    with pytest.raises(UnknownArchitectureError, match=match) as error:
        fold_vector(model, vector, 1.0, tmp_path / "out")
    assert "Fix: steer it at run time" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_bad_arguments_are_refused(tmp_path: Path):
    model = _tiny("gpt2")
    vector = SteeringVector(torch.ones(32), layer=1)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ConfigError, match="not an empty directory"):
        fold_vector(model, vector, 1.0, tmp_path / "taken")
    with pytest.raises(ConfigError, match="alpha"):
        fold_vector(model, vector, float("nan"), tmp_path / "out")
    with pytest.raises(ConfigError, match="resid_post"):
        fold_vector(model, SteeringVector(torch.ones(32), layer=1, hook_point="resid_pre"), 1.0, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]

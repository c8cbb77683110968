"""Orthogonalised weights: plain transformers generates exactly what the runtime ablation generates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, Gemma2Config, Gemma2ForCausalLM, GPT2Config, GPT2LMHeadModel

from saesteer.cli.main import main
from saesteer.engines.ablation import DirectionAblation
from saesteer.errors import ConfigError, UnknownArchitectureError
from saesteer.interop import orthogonalize_model
from saesteer.interop.orthogonalize import RECORD
from saesteer.runtime import steer
from saesteer.runtime.ablation import ablate
from saesteer.store import Store
from tests.conftest import chat_batch, hook_count

PROMPTS = ["Tell me about your favourite food.", "What is a balance sheet?", "How do I learn to swim?"]


def _direction(width: int) -> torch.Tensor:
    return torch.randn(width, generator=torch.Generator().manual_seed(0))


def _generate(model: Any, batch: dict[str, torch.Tensor]) -> list[list[int]]:
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=16, do_sample=False)
    return out[:, batch["input_ids"].shape[1] :].tolist()


@pytest.fixture(scope="module")
def ortho(smollm2: Any, tmp_path_factory: Any) -> tuple[torch.Tensor, Path, Any]:
    model, tokenizer = smollm2
    r = _direction(model.config.hidden_size)
    out = orthogonalize_model(model, r, tmp_path_factory.mktemp("ortho") / "model", tokenizer=tokenizer)
    return r, out, AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()


@pytest.mark.slow
def test_checkpoint_generates_the_runtime_ablation_tokens(smollm2: Any, ortho: Any) -> None:
    model, tokenizer = smollm2
    r, _, plain = ortho
    batch = chat_batch(tokenizer, PROMPTS)  # left-padded: padding is masked out in both forms
    with ablate(model, r):
        ablated = _generate(model, batch)
    artifact = DirectionAblation(r, list(range(model.config.num_hidden_layers)))  # the stored form, via steer
    with steer(model, artifact):
        assert _generate(model, batch) == ablated
    assert _generate(plain, batch) == ablated
    assert _generate(model, batch) != ablated
    assert hook_count(model) == 0


def test_checkpoint_is_untied_orthogonal_and_the_original_unchanged(smollm2: Any, ortho: Any) -> None:
    model, _ = smollm2
    r, out, plain = ortho
    unit = (r / r.norm()).double()
    assert plain.lm_head.weight is not plain.model.embed_tokens.weight and not plain.config.tie_word_embeddings
    assert torch.equal(plain.lm_head.weight, model.lm_head.weight)  # the unembedding is the original matrix
    assert (plain.model.embed_tokens.weight.double() @ unit).abs().max() < 1e-5
    for block in plain.model.layers:
        for linear in (block.self_attn.o_proj, block.mlp.down_proj):
            assert (unit @ linear.weight.double()).abs().max() < 1e-5
    assert model.lm_head.weight is model.model.embed_tokens.weight  # the original stays tied and unchanged
    assert (model.model.embed_tokens.weight.double() @ unit).abs().max() > 0.1
    assert json.loads((out / RECORD).read_text())["untied_lm_head"] is True


def test_refused_models_directions_and_targets(smollm2: Any, tmp_path: Path) -> None:
    shared = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    gemma = Gemma2ForCausalLM(Gemma2Config(num_key_value_heads=2, head_dim=8, vocab_size=97, **shared))
    with pytest.raises(UnknownArchitectureError, match=r"normalises each attention/MLP output.*Fix:"):
        orthogonalize_model(gemma, _direction(32), tmp_path / "g")
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=97))
    with pytest.raises(UnknownArchitectureError, match="has not checked"):
        orthogonalize_model(gpt2, _direction(32), tmp_path / "h")
    model, _ = smollm2
    with pytest.raises(ConfigError, match="hidden size"):
        orthogonalize_model(model, _direction(32), tmp_path / "w")
    layers_mode = DirectionAblation(_direction(model.config.hidden_size), [3], mode="layers")
    with pytest.raises(ConfigError, match="all-layers"):
        orthogonalize_model(model, layers_mode, tmp_path / "l")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(ConfigError, match="not an empty directory"):
        orthogonalize_model(model, _direction(model.config.hidden_size), tmp_path / "full")


def test_cli_refuses_a_non_ablation_artifact(smollm2: Any, tmp_path: Path, capsys: Any) -> None:
    from saesteer.vectors import SteeringVector

    model, _ = smollm2
    Store(tmp_path / "store").save("v", SteeringVector(_direction(model.config.hidden_size), layer=3))
    argv = ["vector", "orthogonalize", "v", "--store", str(tmp_path / "store"), "--model", "smollm2-135m-instruct"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    out = capsys.readouterr().out
    assert "not a directional ablation" in out and "Fix:" in out and not (tmp_path / "o").exists()

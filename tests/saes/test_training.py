"""An SAE trained by saesteer with sae-lens on the real SmolLM2 (the session fixture)."""

from __future__ import annotations

import pytest
import torch

from saesteer.errors import ConfigError
from saesteer.runtime.capture import capture
from saesteer.saes import SAETrainConfig, evaluate_sae, train_sae
from tests.conftest import chat_batch


def test_trained_sae_reconstructs_held_out_activations(smollm2_sae):
    sae, metrics = smollm2_sae
    assert type(sae).__name__ == "TopKSAE" and sae.cfg.d_in == 576 and sae.cfg.d_sae == 1152
    assert metrics["explained_variance"] > 0.6, metrics
    assert metrics["l0"] == pytest.approx(16.0)
    assert metrics["training"]["layer"] == 8 and metrics["eval_tokens"] > 1000
    assert len(metrics["data_hash"]) == 16


def test_trained_sae_transfers_to_chat_activations(smollm2, smollm2_sae):
    """Trained on (chat-wrapped) docstrings, evaluated on chat prompts (position 0 excluded, as in training)."""
    model, tokenizer = smollm2
    sae, _ = smollm2_sae
    batch = chat_batch(tokenizer, ["How was your weekend?", "Explain how a bicycle works in two sentences."])
    hidden = capture(model, batch, [8])[8]
    valid = batch["attention_mask"].bool()
    valid[:, :] &= valid.cumsum(1) > 1  # drop each row's first real token (the attention sink)
    metrics = evaluate_sae(sae, hidden[valid].float())
    assert metrics["explained_variance"] > 0.5, metrics


def test_bad_training_configs(smollm2):
    model, tokenizer = smollm2
    with pytest.raises(ConfigError, match="tokens > batch_size"):
        train_sae(model, tokenizer, SAETrainConfig(layer=8, tokens=100, batch_size=512), progress=False)
    with pytest.raises(Exception, match="out of range"):
        train_sae(model, tokenizer, SAETrainConfig(layer=40), progress=False)


def test_evaluate_sae_on_known_answer(smollm2_sae):
    sae, _ = smollm2_sae
    acts = torch.randn(64, 576)
    metrics = evaluate_sae(sae, acts)
    assert 0 <= metrics["l0"] <= 16 and metrics["eval_tokens"] == 64


def test_jumprelu_trains_and_round_trips_through_the_store(tmp_path, smollm2):
    from saesteer.store import Store

    model, tokenizer = smollm2
    config = SAETrainConfig(
        layer=4, architecture="jumprelu", d_sae=576, tokens=4096, steps=40, batch_size=256, lr=1e-3, l0_coefficient=0.5
    )
    sae, metrics = train_sae(model, tokenizer, config, progress=False)
    assert type(sae).__name__ == "JumpReLUSAE" and metrics["l0"] > 0 and metrics["explained_variance"] > 0
    store = Store(tmp_path)
    store.save_sae("jr", sae, model_id="smollm2-135m-instruct", layer=4, metrics=metrics)
    x = torch.randn(8, 576) * 20
    torch.testing.assert_close(store.load_sae("jr").encode(x), sae.encode(x))

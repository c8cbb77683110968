"""Ctrl-C or an error in the middle of PrOSV / PSR training leaves the shared model exactly as it was."""

from __future__ import annotations

import pytest
import torch

from saesteer.data import sample_path
from saesteer.engines import prosv, psr
from saesteer.engines.prosv import training as prosv_training
from saesteer.engines.prosv.data import load_triples
from saesteer.engines.psr import training as psr_training
from saesteer.engines.psr.data import Triplet
from tests.conftest import chat_batch, hook_count


def _interrupt_on_call(real, number: int, error: BaseException):
    """``real`` that raises ``error`` on its ``number``-th call (after earlier training steps have run)."""
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == number:
            raise error
        return real(*args, **kwargs)

    return wrapped


def _untouched(model, tokenizer, before: torch.Tensor, flags: list[bool]) -> None:
    assert hook_count(model) == 0
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        assert torch.equal(model(**chat_batch(tokenizer, ["Hello there!"])).logits, before)


@pytest.fixture
def reference_logits(smollm2):
    """Logits before training; the weights are made trainable (as a user's own model may be) for the test."""
    model, tokenizer = smollm2
    with torch.no_grad():
        logits = model(**chat_batch(tokenizer, ["Hello there!"])).logits
    model.requires_grad_(True)
    yield logits
    model.requires_grad_(False)
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("boom")])
def test_prosv_training_interrupted_mid_run(smollm2, reference_logits, monkeypatch, error):
    model, tokenizer = smollm2
    triples = load_triples(sample_path("axbench/train.jsonl"), concept_id=2, limit=4)
    monkeypatch.setattr(prosv_training, "_step_loss", _interrupt_on_call(prosv_training._step_loss, 2, error))
    config = prosv.ProsvConfig(layer=10, epochs=1, batch_size=2, max_response_tokens=8)
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(type(error)):
        prosv.fit(model, tokenizer, triples, config, progress=False)
    _untouched(model, tokenizer, reference_logits, flags)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("boom")])
def test_psr_training_interrupted_mid_run(smollm2, reference_logits, monkeypatch, error):
    model, tokenizer = smollm2
    ids = tuple(tokenizer(" Wonderful, what a great day!", add_special_tokens=False)["input_ids"])
    triplets = [Triplet(p, p + "\n\nBe happy.", ids, "") for p in ("Hi?", "How are you?", "Why?", "What now?")]
    monkeypatch.setattr(psr_training, "_loss", _interrupt_on_call(psr_training._loss, 3, error))  # 1: initial dev
    config = psr.PSRConfig(layers=[27], epochs=1, batch_size=1)
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(type(error)):
        psr.train_probes(model, tokenizer, triplets, config, dev=triplets[:1], progress=False)
    _untouched(model, tokenizer, reference_logits, flags)


@pytest.mark.parametrize("method", ["prosv", "psr"])
@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("boom")])
def test_an_error_inside_the_training_forward_leaves_the_model_clean(
    smollm2, reference_logits, monkeypatch, method, error
):
    """Raised from inside the model forward, while the runtime's trainable operator is installed."""
    from saesteer.runtime import trainable

    model, tokenizer = smollm2
    operator = trainable.TrainableAdd if method == "prosv" else trainable.TrainableProbe
    monkeypatch.setattr(operator, "apply", _interrupt_on_call(operator.apply, 2, error))
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(type(error)):
        if method == "prosv":
            triples = load_triples(sample_path("axbench/train.jsonl"), concept_id=2, limit=4)
            config = prosv.ProsvConfig(layer=10, epochs=1, batch_size=2, max_response_tokens=8)
            prosv.train_vector(model, tokenizer, triples, config, progress=False)
        else:
            ids = tuple(tokenizer(" Great!", add_special_tokens=False)["input_ids"])
            triplets = [Triplet(p, p + "\n\nBe happy.", ids, "") for p in ("Hi?", "How are you?", "Why?")]
            config = psr.PSRConfig(layers=[27], epochs=1, batch_size=1)
            psr.train_probes(model, tokenizer, triplets, config, dev=triplets[:1], progress=False)
    _untouched(model, tokenizer, reference_logits, flags)

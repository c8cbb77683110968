"""Trainable operators: live, differentiable parameters applied through steer() on the real model."""

from __future__ import annotations

import pytest
import torch

from saesteer.errors import ConfigError, VectorError
from saesteer.runtime import ExplicitMask, GatedProbe, Intervention, TrainableAdd, TrainableProbe, steer
from tests.conftest import chat_batch, hook_count

PROMPTS = ["How was your weekend?", "Why?"]


def _vector(d: int = 576, seed: int = 0) -> torch.Tensor:
    return torch.randn(d, generator=torch.Generator().manual_seed(seed)) / d**0.5


def test_trainable_add_matches_add_vector_and_carries_gradients(smollm2):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, PROMPTS)
    vector = _vector().requires_grad_(True)
    alpha = torch.tensor(6.0, requires_grad=True)
    hooks = hook_count(model)
    with steer(model, Intervention(10, TrainableAdd(vector, alpha), "all")):
        logits = model(**batch, use_cache=False).logits
    assert hook_count(model) == hooks
    with torch.no_grad(), steer(model, vector.detach(), layer=10, alpha=6.0):
        cached = model(**batch).logits
    torch.testing.assert_close(logits.detach(), cached, atol=1e-4, rtol=1e-4)
    logits[:, -1].logsumexp(-1).sum().backward()
    assert vector.grad is not None and float(vector.grad.abs().max()) > 0
    assert alpha.grad is not None and float(alpha.grad.abs()) > 0


def test_trainable_add_reads_its_parameters_live_on_every_forward():
    vector, alpha = torch.ones(3), torch.tensor(2.0)
    add = TrainableAdd(vector, alpha)
    hidden = torch.zeros(1, 2, 3)
    assert torch.equal(add.apply(hidden, None), torch.full((1, 2, 3), 2.0))
    with torch.no_grad():
        alpha.fill_(5.0)  # an optimiser step: no cached delta may survive it
    mask = torch.tensor([[True, False]])
    assert add.apply(hidden, mask).tolist() == [[[5.0] * 3, [0.0] * 3]]
    assert add.rows is None and add.width == 3


def test_trainable_probe_matches_gated_probe_records_and_learns():
    g = torch.Generator().manual_seed(0)
    w, z = torch.randn(6, generator=g).requires_grad_(True), torch.randn(6, generator=g).requires_grad_(True)
    b = torch.tensor(0.1, requires_grad=True)
    hidden = torch.randn(2, 5, 6, generator=g)
    strength = torch.tensor([0.5, 2.0])
    probe = TrainableProbe(w, b, z, strength)
    with pytest.raises(ConfigError, match="Fix:"):
        probe.recorded()
    mask = torch.rand(2, 5, generator=g) > 0.3
    out = probe.apply(hidden, mask)
    reference = GatedProbe(w.detach(), b.detach(), z.detach(), strength.tolist()).apply(hidden, mask)
    torch.testing.assert_close(out.detach(), reference)
    pre, gate = probe.recorded()
    assert pre is hidden and gate.shape == (2, 5)
    torch.testing.assert_close(gate.detach(), torch.relu(hidden @ w.detach() + b.detach()))  # every token
    assert torch.equal(out[~mask], hidden[~mask]) and probe.rows == 2 and probe.width == 6
    (out.sum() + gate.sum()).backward()
    assert all(t.grad is not None and float(t.grad.abs().max()) > 0 for t in (w, b, z))


def test_trainable_probe_through_steer_on_an_explicit_span(smollm2):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, PROMPTS)
    span = torch.zeros_like(batch["attention_mask"], dtype=torch.bool)
    span[:, -3:] = True
    w = (1e-4 * _vector(seed=1)).requires_grad_(True)
    b = torch.tensor(5.0, requires_grad=True)
    z = (20 * _vector(seed=2)).requires_grad_(True)
    probe = TrainableProbe(w, b, z, torch.tensor([0.0, 1.0]))
    with torch.no_grad():
        plain = model(**batch).logits
    with steer(model, Intervention(10, probe, ExplicitMask(span))):
        logits = model(**batch, use_cache=False).logits
    torch.testing.assert_close(logits[0].detach(), plain[0], atol=1e-4, rtol=1e-4)  # strength 0: row untouched
    assert float((logits[1, -1].detach() - plain[1, -1]).abs().max()) > 0.1
    torch.testing.assert_close(logits[1, :-3].detach(), plain[1, :-3], atol=1e-4, rtol=1e-4)  # before the span
    logits[1, -1].logsumexp(-1).backward()
    assert float(z.grad.abs().max()) > 0 and float(w.grad.abs().max()) > 0


def test_per_row_strength_must_match_the_batch(smollm2):
    model, tokenizer = smollm2
    probe = TrainableProbe(torch.zeros(576), torch.tensor(0.0), torch.zeros(576), torch.ones(3))
    with pytest.raises(VectorError, match="per-row"), steer(model, Intervention(4, probe, "all")):
        model(**chat_batch(tokenizer, PROMPTS))

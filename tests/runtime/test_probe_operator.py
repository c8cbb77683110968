"""GatedProbe (PSR's ReLU-gated rank-1 edit): the formula, per-row alpha, masks, bad input, and the
artifact applied through steer() on the real model."""

from __future__ import annotations

import pytest
import torch

from saesteer.engines.psr import PSRArtifact
from saesteer.errors import ConfigError, LayerError, VectorError
from saesteer.runtime import steer
from saesteer.runtime.probe_operator import GatedProbe
from tests.conftest import chat_batch, hook_count


def _probe(d: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, generator=g), torch.tensor(0.1), torch.randn(d, generator=g)


def test_edit_is_alpha_relu_gate_times_z_and_silent_tokens_stay_exact():
    w, b, z = _probe()
    hidden = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(1))
    out = GatedProbe(w, b, z, 1.5).apply(hidden, None)
    pre = hidden @ w + b
    expected = hidden + 1.5 * torch.relu(pre)[..., None] * z
    torch.testing.assert_close(out, expected)
    silent = pre <= 0
    assert bool(silent.any()) and bool((~silent).any())
    assert torch.equal(out[silent], hidden[silent])
    assert not torch.equal(out[~silent], hidden[~silent])


def test_per_row_alpha_scales_each_row_and_mask_limits_tokens():
    w, b, z = _probe()
    hidden = torch.randn(1, 4, 6, generator=torch.Generator().manual_seed(2)).expand(3, 4, 6)
    probe = GatedProbe(w, b, z, [0.0, 1.0, 2.0])
    assert probe.rows == 3 and probe.width == 6
    out = probe.apply(hidden, None)
    assert torch.equal(out[0], hidden[0])
    torch.testing.assert_close(out[2] - hidden[2], 2 * (out[1] - hidden[1]))
    mask = torch.tensor([[False, True, False, False]] * 3)
    masked = probe.apply(hidden, mask)
    assert torch.equal(masked[:, [0, 2, 3]], hidden[:, [0, 2, 3]])
    torch.testing.assert_close(masked[:, 1], out[:, 1])


@pytest.mark.parametrize(
    "w, b, z, alpha",
    [
        (torch.tensor([1.0, float("nan")]), torch.tensor(0.0), torch.ones(2), 1.0),
        (torch.ones(2), torch.tensor(float("inf")), torch.ones(2), 1.0),
        (torch.ones(2), torch.tensor(0.0), torch.ones(3), 1.0),
        (torch.ones(2), torch.zeros(2), torch.ones(2), 1.0),
        (torch.ones(2), torch.tensor(0.0), torch.ones(2), [[1.0]]),
    ],
)
def test_bad_probes_raise_vector_error(w, b, z, alpha):
    with pytest.raises(VectorError, match="Fix:"):
        GatedProbe(w, b, z, alpha)


def test_artifact_alpha_is_a_multiplier_on_the_calibrated_alpha():
    artifact = PSRArtifact({3: _probe()}, alpha=2.0)
    (item,) = artifact.interventions(alpha=[0.5, 1.5])
    assert item.layer == 3 and item.positions.name == "prompt_and_generated_last"
    assert item.operator.alpha.tolist() == [1.0, 3.0]
    with pytest.raises(ConfigError, match="Fix:"):
        artifact.interventions(layer=4)
    with pytest.raises(VectorError, match="Fix:"):
        PSRArtifact({3: _probe()}, alpha=float("nan"))


def _last_logits(model, batch, artifact=None, alpha=1.0):
    if artifact is None:
        with torch.no_grad():
            return model(**batch).logits[:, -1]
    with torch.no_grad(), steer(model, artifact, alpha=alpha):
        return model(**batch).logits[:, -1]


def test_artifact_steers_the_real_model_per_row_and_cleans_up(smollm2):
    model, tokenizer = smollm2
    d = model.config.hidden_size
    g = torch.Generator().manual_seed(3)
    w = 1e-4 * torch.randn(d, generator=g)  # small: the gate stays open (~5) whatever the hidden norm
    artifact = PSRArtifact({10: (w, torch.tensor(5.0), 20 * torch.randn(d, generator=g) / d**0.5)}, alpha=1.0)
    prompts = ["How was your weekend?", "Describe a typical morning."]
    batch = chat_batch(tokenizer, prompts)
    before = hook_count(model)
    base = _last_logits(model, batch)
    rows = _last_logits(model, batch, artifact, alpha=[0.0, 2.0])
    assert hook_count(model) == before
    torch.testing.assert_close(rows[0], base[0], atol=1e-4, rtol=1e-4)
    assert float((rows[1] - base[1]).abs().max()) > 0.1
    alone = _last_logits(model, chat_batch(tokenizer, prompts[1:]), artifact, alpha=2.0)
    torch.testing.assert_close(rows[1], alone[0], atol=2e-3, rtol=1e-4)
    wide = PSRArtifact({10: (torch.ones(d + 1), torch.tensor(0.0), torch.ones(d + 1))})
    with pytest.raises(VectorError, match="hidden size"):
        _last_logits(model, batch, wide)
    far = PSRArtifact({99: (w, torch.tensor(0.0), w)})
    with pytest.raises(LayerError, match="Fix:"):
        _last_logits(model, batch, far)
    assert hook_count(model) == before

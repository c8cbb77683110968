"""AblateDirection and ablate(): the component along r is removed, the rest kept, only where masked."""

from __future__ import annotations

import pytest
import torch

from saesteer.errors import VectorError
from saesteer.runtime import steer
from saesteer.runtime.ablation import AblateDirection, ablate
from saesteer.runtime.capture import capture
from saesteer.runtime.intervention import Intervention
from tests.conftest import chat_batch, hook_count

PROMPTS = ["How was your weekend?", "Describe a typical morning in a busy city."]


def _unit(width: int, seed: int = 0) -> torch.Tensor:
    vector = torch.randn(width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return vector / vector.norm()


def test_component_along_r_is_removed_and_the_orthogonal_part_kept():
    r = _unit(16)
    hidden = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1))
    out = AblateDirection(3.0 * r).apply(hidden, None)  # the direction's norm does not matter
    assert out.dtype == hidden.dtype and out.shape == hidden.shape
    assert (out.double() @ r).abs().max() < 1e-6
    orthogonal = hidden.double() - (hidden.double() @ r)[..., None] * r
    torch.testing.assert_close(out.double(), orthogonal, atol=1e-6, rtol=0)


def test_mask_limits_the_ablation_to_chosen_positions():
    r = _unit(8)
    hidden = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([[True, False, False, True], [False, True, False, False]])
    out = AblateDirection(r).apply(hidden, mask)
    assert torch.equal(out[~mask], hidden[~mask])
    assert (out[mask].double() @ r).abs().max() < 1e-6
    assert (hidden[mask].double() @ r).abs().min() > 1e-3


def test_scale_per_row_and_bad_directions():
    r = _unit(8)
    hidden = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(3))
    out = AblateDirection(r, torch.tensor([0.0, 2.0])).apply(hidden, None)
    assert torch.equal(out[0], hidden[0])
    torch.testing.assert_close(out[1].double() @ r, -(hidden[1].double() @ r))  # scale 2 reflects
    for bad in (torch.zeros(8), torch.tensor([1.0, float("nan")]), torch.ones(2, 8)):
        with pytest.raises(VectorError, match="Fix:"):
            AblateDirection(bad)
    with pytest.raises(VectorError, match="width"):
        AblateDirection(r).apply(torch.zeros(1, 2, 4), None)


def test_block_level_ablation_through_steer_zeroes_the_projection(smollm2):
    model, tokenizer = smollm2
    r = _unit(model.config.hidden_size, seed=4).float()
    batch = chat_batch(tokenizer, PROMPTS)
    valid = batch["attention_mask"].bool()
    before = capture(model, batch, [10])[10]
    with steer(model, Intervention(10, AblateDirection(r), "all")):
        after = capture(model, batch, [10])[10]
    assert (before[valid].double() @ r.double()).abs().mean() > 0.1
    assert (after[valid].double() @ r.double()).abs().max() < 1e-4
    assert hook_count(model) == 0


def test_ablate_keeps_r_out_of_every_block_and_sublayer(smollm2):
    model, tokenizer = smollm2
    r = _unit(model.config.hidden_size, seed=5).float()
    batch = chat_batch(tokenizer, PROMPTS)
    valid = batch["attention_mask"].bool()
    seen: list[torch.Tensor] = []  # the residual stream where each MLP reads it, and before the final norm
    layers = model.model.layers
    readers = [layers[i].post_attention_layernorm for i in (0, 15, 29)] + [model.model.norm]
    probes = [module.register_forward_pre_hook(lambda m, a: seen.append(a[0])) for module in readers]
    try:
        with torch.no_grad(), ablate(model, r):
            hidden = model(**batch, output_hidden_states=True).hidden_states
    finally:
        for probe in probes:
            probe.remove()
    assert len(seen) == 4
    for states in (*hidden[1:-1], *seen):  # hidden_states[-1] is after the final norm
        assert (states[valid].double() @ r.double()).abs().max() < 1e-3
    assert hook_count(model) == 0
    with pytest.raises(VectorError, match="hidden size"), ablate(model, torch.ones(4)):
        pass
    assert hook_count(model) == 0

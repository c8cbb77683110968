"""SAEEdit on the real model and the session's TopK SAE: exactness with the error term, clamping, composition,
per-row strength and bad input."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from saesteer.errors import ConfigError, SAEError, VectorError
from saesteer.runtime import Intervention, LatentEdit, SAEEdit, capture, steer
from tests.conftest import chat_batch

PROMPTS = ["How was your weekend?", "Describe a typical morning in a busy city, please.", "Why?"]


def generate(model: Any, batch: dict[str, torch.Tensor], tokenizer: Any) -> Any:
    return model.generate(
        **batch,
        max_new_tokens=6,
        do_sample=False,
        output_logits=True,
        return_dict_in_generate=True,
        pad_token_id=tokenizer.pad_token_id,
    )


def logits_everywhere(model: Any, tokenizer: Any, batch: dict[str, torch.Tensor], steering: Any = None) -> Any:
    """(prefill logits at every prompt position, generated ids, logits of every KV-cached decode step)."""
    with torch.no_grad():
        if steering is None:
            return model(**batch).logits, generate(model, batch, tokenizer)
        with steer(model, steering):
            return model(**batch).logits, generate(model, batch, tokenizer)


def test_identity_edits_reproduce_unsteered_logits_exactly_and_dropping_the_error_term_does_not(
    smollm2: Any, smollm2_sae: Any
) -> None:
    model, tokenizer = smollm2
    sae = smollm2_sae[0]
    batch = chat_batch(tokenizer, PROMPTS)
    assert bool((batch["attention_mask"] == 0).any()), "the batch must be left-padded"
    plain_prefill, plain = logits_everywhere(model, tokenizer, batch)
    identity = [LatentEdit(3, "scale", 1.0), LatentEdit(40, "add", 0.0), LatentEdit(3, "set", 9.0)]
    for alpha in (1.0, [1.0, 1.0, 1.0]):
        edit = Intervention(8, SAEEdit(sae, identity[:2], alpha=alpha))  # scale by 1, add 0: every latent kept
        same_prefill, same = logits_everywhere(model, tokenizer, batch, edit)
        assert torch.equal(same_prefill, plain_prefill)
        assert torch.equal(same.sequences, plain.sequences)
        assert all(torch.equal(a, b) for a, b in zip(same.logits, plain.logits, strict=True))
    zero = Intervention(8, SAEEdit(sae, identity, alpha=0.0))  # set 9 at strength 0 keeps every latent's own value
    assert torch.equal(logits_everywhere(model, tokenizer, batch, zero)[0], plain_prefill)

    lossy = Intervention(8, SAEEdit(sae, identity[:2], keep_error=False))
    lossy_prefill, lossy_out = logits_everywhere(model, tokenizer, batch, lossy)
    valid = batch["attention_mask"].bool()
    gap = float((lossy_prefill - plain_prefill).abs()[valid].max())
    step_gap = max(float((a - b).abs().max()) for a, b in zip(lossy_out.logits, plain.logits, strict=True))
    print(f"max |logit diff| without the error term: prefill {gap:.3f}, decode steps {step_gap:.3f}; with it: 0")
    assert gap > 0.5 and step_gap > 0.1


def test_clamp_sets_the_latent_and_moves_h_along_its_decoder_row(smollm2: Any, smollm2_sae: Any) -> None:
    model, tokenizer = smollm2
    sae = smollm2_sae[0]
    hidden = capture(model, chat_batch(tokenizer, PROMPTS[:1]), [8])[8]
    with torch.no_grad():
        f = sae.encode(hidden)
        latent = int(f[0].abs().sum(dim=0).argmax())  # a latent that is on somewhere
        op = SAEEdit(sae, [LatentEdit(latent, "set", 7.0)])
        assert torch.equal(op.edited(f)[..., latent], torch.full_like(f[..., latent], 7.0))
        moved = op.apply(hidden, None) - hidden
        expected = (7.0 - f[..., latent])[..., None] * sae.W_dec[latent]
        torch.testing.assert_close(moved, expected, atol=1e-4, rtol=1e-4)
        again = sae.encode(hidden + moved)[..., latent]
        assert float((again - 7.0).abs().mean()) < float((f[..., latent] - 7.0).abs().mean())
        ablated = SAEEdit(sae, [LatentEdit(latent, "ablate")]).edited(f)[..., latent]
        assert torch.equal(ablated, torch.zeros_like(ablated))
        half = SAEEdit(sae, [LatentEdit(latent, "scale", 3.0)], alpha=0.5).edited(f)[..., latent]
        torch.testing.assert_close(half, f[..., latent] * 2.0)


def test_edits_of_several_latents_and_layers_compose(smollm2: Any, smollm2_sae: Any) -> None:
    model, tokenizer = smollm2
    sae = smollm2_sae[0]
    batch = chat_batch(tokenizer, PROMPTS)
    hidden = capture(model, batch, [8])[8]
    one, two = LatentEdit(5, "set", 6.0), LatentEdit(9, "add", 4.0)
    with torch.no_grad():
        both = SAEEdit(sae, [one, two]).apply(hidden, None) - hidden
        apart = (SAEEdit(sae, [one]).apply(hidden, None) - hidden) + (SAEEdit(sae, [two]).apply(hidden, None) - hidden)
        torch.testing.assert_close(both, apart, atol=1e-4, rtol=1e-4)
        logits = {}
        for name, layers in {"8": [8], "10": [10], "8+10": [8, 10]}.items():
            with steer(model, [Intervention(layer, SAEEdit(sae, [one, two], alpha=3.0)) for layer in layers]):
                logits[name] = model(**batch).logits
    assert not torch.allclose(logits["8+10"], logits["8"]) and not torch.allclose(logits["8+10"], logits["10"])


def test_per_row_alpha_leaves_a_zero_row_exact(smollm2: Any, smollm2_sae: Any) -> None:
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, PROMPTS)
    with torch.no_grad():
        plain = model(**batch).logits
        with steer(model, Intervention(8, SAEEdit(smollm2_sae[0], [LatentEdit(5, "set", 30.0)], alpha=[0, 1, 2]))):
            rows = model(**batch).logits
    assert torch.equal(rows[0], plain[0])
    assert not torch.allclose(rows[1], plain[1]) and not torch.allclose(rows[2], rows[1])


def test_bad_edits_are_typed_errors_with_a_fix(smollm2: Any, smollm2_sae: Any) -> None:
    model, _ = smollm2
    sae = smollm2_sae[0]
    with pytest.raises(SAEError, match=r"latent index 5000.*Fix:"):
        SAEEdit(sae, [LatentEdit(5000, "set", 1.0)])
    with pytest.raises(ConfigError, match=r"nan.*Fix:"):
        LatentEdit(3, "set", float("nan"))
    with pytest.raises(ConfigError, match="Fix:"):
        LatentEdit(3, "clamp", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Fix:"):
        SAEEdit(sae, [])
    narrow = SimpleNamespace(cfg=SimpleNamespace(d_in=64, d_sae=10))
    with (
        pytest.raises(VectorError, match=r"width 64.*Fix:"),
        steer(model, Intervention(8, SAEEdit(narrow, [LatentEdit(1, "add", 1.0)]))),
    ):
        pass

"""Logit lens of SAE decoder directions: the tokens each latent's direction promotes and suppresses.

The direction goes through the final norm the way TransformerLens's ``fold_ln`` treats it: the norm's
per-channel gain is applied (probed by running the norm on a vector of ones, so Gemma's ``1 + weight``
is handled too), LayerNorm's mean subtraction is applied and its bias dropped, and the per-token 1/RMS
scale is left out (a positive scalar, it changes no ranking). Then ``W_U`` maps it to the vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

NORM_PATHS = ("model.norm", "model.language_model.norm", "transformer.ln_f", "model.final_layernorm", "norm")


@dataclass
class LensTokens:
    """Top (promoted) and bottom (suppressed) tokens of one latent, with their logit contributions."""

    top: list[tuple[str, float]]
    bottom: list[tuple[str, float]]


def final_norm(model: Any) -> tuple[nn.Module | None, str]:
    """The final norm before the unembedding and its attribute path ("" if the model has none we know)."""
    for path in NORM_PATHS:
        module: Any = model
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.Module):
            return module, path
    return None, ""


@torch.no_grad()
def through_norm(model: Any, directions: Tensor) -> Tensor:
    """``directions`` (F, d) as the final norm passes them on (gain applied, LayerNorm centring)."""
    norm, _ = final_norm(model)
    if norm is None:
        return directions
    if isinstance(norm, nn.LayerNorm):
        centred = directions - directions.mean(-1, keepdim=True)
        return centred * norm.weight.float() if norm.weight is not None else centred
    ones = torch.ones(1, directions.shape[-1], dtype=next(norm.parameters(), torch.ones(1)).dtype)
    return directions * norm(ones).float()


@torch.no_grad()
def logit_lens(model: Any, tokenizer: Any, sae: Any, features: list[int], k: int = 8) -> dict[int, LensTokens]:
    """The ``k`` highest and lowest logits of ``W_dec[i] @ W_U`` for each latent ``i``."""
    unembed = model.get_output_embeddings().weight.float()  # (vocab, d)
    directions = through_norm(model, sae.W_dec[features].float())
    logits = directions @ unembed.T
    top, bottom = logits.topk(k, dim=1), logits.topk(k, dim=1, largest=False)
    found = {}
    for row, feature in enumerate(features):
        found[feature] = LensTokens(
            [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(top.values[row], top.indices[row], strict=True)],
            [
                (tokenizer.decode([int(i)]), float(v))
                for v, i in zip(bottom.values[row], bottom.indices[row], strict=True)
            ],
        )
    return found

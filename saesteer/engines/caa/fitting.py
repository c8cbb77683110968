"""CAA (Rimsky et al. 2024): contrastive mean difference of block outputs.

A/B items: read the block output at the answer-letter token of "prompt + (A)" for the matching and
the non-matching answer; v_l = mean over pairs of (matching - non-matching).
Completion pairs: read the mean block output over the completion's tokens (or its last token).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from saesteer.data.chat import chat_prompt, encode, has_chat_template
from saesteer.data.pairs import ABItem, ContrastItem, load_contrast_data
from saesteer.errors import ConfigError, DataError
from saesteer.models.layers import check_context, check_layer
from saesteer.models.loading import model_id
from saesteer.runtime.capture import capture
from saesteer.runtime.intervention import HookPoint
from saesteer.vectors import SteeringVector

Read = Literal["auto", "answer", "mean", "last"]


@dataclass(frozen=True)
class Span:
    """Characters of a text whose tokens are read: [start, end); ``letter`` reads one character."""

    text: str
    start: int
    end: int
    templated: bool


def answer_letter_index(answer: str) -> int:
    """Index of the letter inside an answer like "(A)" or " (B) yes"."""
    for index, char in enumerate(answer):
        if char.isalnum():
            return index
    raise DataError(f"Answer {answer!r} has no letter. Fix: answers look like '(A)'.")


def _spans(tokenizer: Any, item: ContrastItem, read: Read, system: str | None) -> tuple[Span, Span]:
    if isinstance(item, ABItem):
        prefix = chat_prompt(tokenizer, item.question, system=system)
        templated = has_chat_template(tokenizer)

        def span(answer: str) -> Span:
            if read in ("auto", "answer"):
                letter = len(prefix) + answer_letter_index(answer)
                return Span(prefix + answer, letter, letter + 1, templated)
            return Span(prefix + answer, len(prefix), len(prefix) + len(answer), templated)

        return span(item.matching), span(item.not_matching)
    prefix = chat_prompt(tokenizer, item.prompt, system=system) if item.prompt else ""
    templated = bool(item.prompt) and has_chat_template(tokenizer)
    return (
        Span(prefix + item.positive, len(prefix), len(prefix) + len(item.positive), templated),
        Span(prefix + item.negative, len(prefix), len(prefix) + len(item.negative), templated),
    )


def _token_weights(offsets: Tensor, valid: Tensor, spans: Sequence[Span], read: Read) -> Tensor:
    """(B, T) weights that average the tokens overlapping each span (or pick its last token)."""
    starts = torch.tensor([s.start for s in spans])[:, None]
    ends = torch.tensor([s.end for s in spans])[:, None]
    tok_start, tok_end = offsets[..., 0], offsets[..., 1]
    inside = valid & (tok_end > tok_start) & (tok_end > starts) & (tok_start < ends)
    first_valid = valid.long().cumsum(dim=1) == 1
    inside &= ~first_valid  # position 0 is an attention sink with an outlier norm: never read it
    if read == "last" or read == "answer" or (read == "auto" and bool((ends - starts == 1).all())):
        index = torch.arange(inside.shape[1])
        last = torch.where(inside, index, -1).max(dim=1, keepdim=True).values
        inside = inside & (index[None, :] == last)
    counts = inside.sum(dim=1, keepdim=True)
    if bool((counts == 0).any()):
        bad = int((counts == 0).nonzero()[0, 0])
        raise DataError(f"No token to read for {spans[bad].text[-80:]!r}. Fix: use a non-empty completion.")
    return inside.float() / counts


def read_activations(
    model: Any,
    tokenizer: Any,
    spans: Sequence[Span],
    layers: Sequence[int],
    read: Read,
    hook_point: HookPoint = "resid_post",
) -> dict[int, Tensor]:
    """Per-span pooled activations (N, d) at each layer, in float64."""
    templated = {s.templated for s in spans}
    if len(templated) > 1:
        raise DataError("The batch mixes pairs with and without a prompt. Fix: give every pair a prompt or none.")
    batch = encode(tokenizer, [s.text for s in spans], templated=templated.pop(), return_offsets_mapping=True)
    offsets = batch.pop("offset_mapping")
    check_context(model, batch["input_ids"].shape[1])
    weights = _token_weights(offsets, batch["attention_mask"].bool(), spans, read)
    hidden = capture(model, dict(batch), layers, hook_point)
    return {layer: torch.einsum("bt,btd->bd", weights.double(), h.double()) for layer, h in hidden.items()}


def fit_layers(
    model: Any,
    tokenizer: Any,
    data: Any,
    *,
    layers: int | Sequence[int],
    read: Read = "auto",
    hook_point: HookPoint = "resid_post",
    batch_size: int = 8,
    system: str | None = None,
    progress: bool = True,
) -> dict[int, SteeringVector]:
    """One CAA vector per layer from one pass over the pairs: mean over pairs of (positive - negative)."""
    items = load_contrast_data(data)
    layer_list = [check_layer(model, layer) for layer in ([layers] if isinstance(layers, int) else layers)]
    if not layer_list:
        raise ConfigError("CAA needs at least one layer. Fix: pass layers=[L, ...].")
    if read == "answer" and not isinstance(items[0], ABItem):
        raise ConfigError("read='answer' needs A/B items. Fix: use read='mean' or 'last' for completion pairs.")
    diffs: dict[int, list[Tensor]] = {layer: [] for layer in layer_list}
    for start in tqdm(range(0, len(items), batch_size), desc="CAA activations", disable=not progress):
        chunk = items[start : start + batch_size]
        pairs = [_spans(tokenizer, item, read, system) for item in chunk]
        spans = [p[0] for p in pairs] + [p[1] for p in pairs]
        acts = read_activations(model, tokenizer, spans, layer_list, read, hook_point)
        for layer, values in acts.items():
            diffs[layer].append(values[: len(chunk)] - values[len(chunk) :])
    vectors = {}
    kind = "ab" if isinstance(items[0], ABItem) else "completion"
    for layer in layer_list:
        per_pair = torch.cat(diffs[layer])
        mean = per_pair.mean(dim=0)
        cosines = torch.nn.functional.cosine_similarity(per_pair, mean[None, :], dim=1)
        vectors[layer] = SteeringVector(
            vector=mean.float(),
            layer=layer,
            hook_point=hook_point,
            positions="after_prompt",
            method="caa",
            model_id=model_id(model),
            config={"read": read, "data_format": kind, "n_pairs": len(items), "system": system},
            metrics={
                "norm": float(mean.norm()),
                "pair_cosine_mean": float(cosines.mean()),
                "pair_agreement": float((cosines > 0).double().mean()),
            },
        )
    return vectors


def normalize_to_mean_norm(vectors: Sequence[SteeringVector]) -> list[SteeringVector]:
    """CAA's per-layer normalisation: rescale each behaviour's vector to the mean norm of the set."""
    layers = {v.layer for v in vectors}
    if len(layers) != 1:
        raise ConfigError(f"Normalise vectors of one layer at a time, got layers {sorted(layers)}.")
    target = sum(v.norm for v in vectors) / len(vectors)
    return [
        SteeringVector(
            vector=v.vector * (target / v.norm),
            layer=v.layer,
            hook_point=v.hook_point,
            positions=v.positions,
            method=v.method,
            model_id=v.model_id,
            config={**v.config, "normalized_to": target},
            metrics=v.metrics,
        )
        for v in vectors
    ]

"""AxBench's DiffMean (``axbench/models/mean.py:DiffMean``): the unit-norm difference of the mean activations of
concept and neutral (prompt, response) texts, pooled over every token after the chat prefix (instruction and
response alike), steered as ``h + factor * max_act * w`` on all positions.

``max_act`` follows ``axbench/models/model.py:pre_compute_mean_activations``: the largest projection ``h . w``
(rounded to 3 decimals) over the concept's texts, 50 when it is not positive. AxBench reads it on its held-out
latent-evaluation texts; here it is read on the texts the direction was fitted on (labelled in the vector).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from saesteer.data.chat import chat_prompt, encode, has_chat_template
from saesteer.errors import DataError
from saesteer.models.layers import check_context, check_layer
from saesteer.models.loading import model_id
from saesteer.runtime.capture import capture
from saesteer.vectors import SteeringVector

Text = tuple[str, str]  # (prompt, response)
NON_POSITIVE_MAX_ACT = 50.0  # AxBench's stand-in when the concept's max activation is <= 0


def chat_prefix_length(tokenizer: Any) -> int:
    """Tokens the chat frame puts before any user text (AxBench's ``get_prefix_length``: the common prefix of
    the framed messages "1" and "2"); they are not read."""
    templated = has_chat_template(tokenizer)
    first, second = (
        encode(tokenizer, [chat_prompt(tokenizer, text)], templated=templated)["input_ids"][0].tolist()
        for text in ("1", "2")
    )
    return next(
        (i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), min(len(first), len(second))
    )


def token_states(model: Any, tokenizer: Any, texts: Sequence[Text], layer: int, *, batch_size: int = 8) -> Tensor:
    """Block-output states (N_tokens, d), float32, of every token after the chat prefix of each framed
    ``prompt + response`` text (the prompt's tokens, the generation-prompt tokens and the response)."""
    prefix = chat_prefix_length(tokenizer)
    templated = has_chat_template(tokenizer)
    found = []
    for start in range(0, len(texts), batch_size):
        chunk = [chat_prompt(tokenizer, prompt) + response for prompt, response in texts[start : start + batch_size]]
        batch = encode(tokenizer, chunk, templated=templated)
        check_context(model, batch["input_ids"].shape[1])
        mask = batch["attention_mask"].bool()
        pads = (~mask).sum(dim=1, keepdim=True)  # left padding
        index = torch.arange(mask.shape[1])[None, :]
        read = mask & (index >= pads + prefix)
        hidden = capture(model, dict(batch), [layer])[layer]
        found.append(hidden[read].float())
    states = torch.cat(found) if found else torch.empty(0)
    if states.shape[0] == 0:
        raise DataError("DiffMean found no token to read after the chat prefix. Fix: give non-empty texts.")
    return states


def max_activation(states: Tensor, direction: Tensor) -> float:
    """AxBench's max_act: the largest token projection onto ``direction``, rounded to 3 decimals; 50 if <= 0."""
    value = round(float((states.double() @ direction.double()).max()), 3)
    return value if value > 0 else NON_POSITIVE_MAX_ACT


def fit_diffmean(
    model: Any,
    tokenizer: Any,
    positives: Sequence[Text],
    negatives: Sequence[Text],
    *,
    layer: int,
    batch_size: int = 8,
    config: dict[str, Any] | None = None,
) -> SteeringVector:
    """The DiffMean vector ``max_act * w`` (``w`` unit-norm) of ``layer``, steering all positions, so that a
    factor f adds ``f * max_act * w`` as AxBench does; ``config`` adds provenance labels."""
    if not positives or not negatives:
        raise DataError("DiffMean needs concept and neutral texts. Fix: give at least one of each.")
    layer = check_layer(model, layer)
    positive = token_states(model, tokenizer, positives, layer, batch_size=batch_size)
    negative = token_states(model, tokenizer, negatives, layer, batch_size=batch_size)
    difference = positive.double().mean(dim=0) - negative.double().mean(dim=0)
    direction = difference / (difference.norm() + torch.finfo(torch.float32).eps)
    max_act = max_activation(torch.cat([positive, negative]), direction)
    return SteeringVector(
        vector=(direction * max_act).float(),
        layer=layer,
        positions="all",
        method="diffmean",
        model_id=model_id(model),
        config={
            "read": "prompt+response tokens after the chat prefix",
            "n_positive": len(positives),
            "n_negative": len(negatives),
            "max_act": max_act,
            "max_act_read_on": "fitting texts",
            **(config or {}),
        },
        metrics={"max_act": max_act, "difference_norm": float(difference.norm())},
    )

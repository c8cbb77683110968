"""CAA's A/B protocol: p(matching answer letter) at the answer position, across steering multipliers, with
the paper's per-layer rescaling of the behaviours' vectors to one norm."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from saesteer.data.chat import chat_prompt, has_chat_template
from saesteer.data.examples import pad_rows
from saesteer.data.pairs import ABItem, load_contrast_data
from saesteer.errors import DataError
from saesteer.models.end_markers import end_of_turn_markers
from saesteer.models.layers import check_context
from saesteer.runtime.positions import AfterInstruction, PositionPolicy, PromptInfo
from saesteer.runtime.steer import steer
from saesteer.vectors import SteeringVector


@dataclass
class ABResult:
    """Mean normalised p(matching) per multiplier, plus one record per (item, multiplier)."""

    multipliers: list[float]
    p_matching: dict[float, float]
    matching_rate: dict[float, float]
    records: list[dict[str, Any]] = field(default_factory=list)


def normalise_across_behaviours(
    vectors: Mapping[str, Mapping[int, SteeringVector]],
) -> dict[str, dict[int, SteeringVector]]:
    """CAA's ``normalize_vectors.py``: at each layer, every behaviour's vector is rescaled to the mean norm of
    all the behaviours' vectors at that layer (directions unchanged; the raw norm is kept in ``metrics``), so
    one multiplier means the same strength for every behaviour. ``vectors``: behaviour -> layer -> vector."""
    layer_sets = {frozenset(by_layer) for by_layer in vectors.values()}
    if not vectors or len(layer_sets) != 1:
        raise DataError(
            "Normalising across behaviours needs the same layers for every behaviour. "
            "Fix: fit every behaviour at the same layers."
        )
    normalised: dict[str, dict[int, SteeringVector]] = {name: {} for name in vectors}
    for layer in sorted(next(iter(layer_sets))):
        norms = {name: by_layer[layer].norm for name, by_layer in vectors.items()}
        if min(norms.values()) == 0.0:
            zero = [name for name, norm in norms.items() if norm == 0.0]
            raise DataError(f"The layer-{layer} vector of {zero} is zero. Fix: refit it on contrasting pairs.")
        mean = sum(norms.values()) / len(norms)
        for name, by_layer in vectors.items():
            vector = by_layer[layer]
            normalised[name][layer] = replace(
                vector,
                vector=vector.vector * (mean / norms[name]),
                metrics={**vector.metrics, "raw_norm": norms[name], "normalised_across": sorted(vectors)},
            )
    return normalised


def _decision(tokenizer: Any, item: ABItem) -> tuple[list[int], int, int]:
    """Shared token prefix of the two answered prompts and the first token where they differ."""
    prefix = chat_prompt(tokenizer, item.question)
    special = not has_chat_template(tokenizer)
    match = tokenizer(prefix + item.matching, add_special_tokens=special)["input_ids"]
    other = tokenizer(prefix + item.not_matching, add_special_tokens=special)["input_ids"]
    common = 0
    while common < min(len(match), len(other)) and match[common] == other[common]:
        common += 1
    if common >= min(len(match), len(other)):
        raise DataError(
            f"Answers {item.matching!r} and {item.not_matching!r} tokenize identically. Fix: distinct answers."
        )
    return match[:common], match[common], other[common]


def _instruction_split(ids: list[int], markers: tuple[tuple[int, ...], ...]) -> int:
    """Index of the first token after_prompt steers (the end marker's last token, CAA's ``from_pos``)."""
    row = torch.tensor([ids])
    prompt = PromptInfo(input_ids=row, valid=torch.ones_like(row, dtype=torch.bool), end_markers=markers)
    return int(AfterInstruction().prompt_mask(prompt)[0].nonzero()[0])


def _p_matching(logits: Tensor, decisions: list[tuple[list[int], int, int]]) -> list[float]:
    p = logits.double().softmax(-1)
    return [float(p[row, m] / (p[row, m] + p[row, o])) for row, (_, m, o) in enumerate(decisions)]


def _shared_prefix_probs(
    model: Any, decisions: list[tuple[list[int], int, int]], multipliers: Sequence[float], steering: Any, pad: int
) -> list[float] | None:
    """CAA steers only from the instruction's end on, so the unsteered instruction (up to, not including,
    the end marker's last token) is run once per item and its KV cache reused for every multiplier; returns
    p(matching) item-major, or None if the items' steered tokens differ (then the caller runs full prompts)."""
    markers = end_of_turn_markers(model)
    splits = [_instruction_split(ids, markers) for ids, _, _ in decisions]
    if len({tuple(d[0][s:]) for d, s in zip(decisions, splits, strict=True)}) != 1:
        return None
    suffix = decisions[0][0][splits[0] :]
    ids, mask = pad_rows([d[0][:s] for d, s in zip(decisions, splits, strict=True)], pad, left=True)
    check_context(model, ids.shape[1] + len(suffix))
    with torch.no_grad():
        cache = model(
            input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0)
        ).past_key_values
    repeats = len(multipliers)
    cache.batch_repeat_interleave(repeats)
    rows = ids.shape[0] * repeats
    full_mask = torch.cat([mask.repeat_interleave(repeats, dim=0), torch.ones(rows, len(suffix), dtype=mask.dtype)], 1)
    positions = mask.sum(1).repeat_interleave(repeats)[:, None] + torch.arange(len(suffix))
    alphas = [m for _ in decisions for m in multipliers]
    # The cache was filled outside the steering context, so every suffix token counts as after the prompt.
    with steer(model, steering, alpha=alphas, positions="after_prompt"), torch.no_grad():
        logits = model(
            input_ids=torch.tensor([suffix] * rows),
            attention_mask=full_mask,
            position_ids=positions,
            past_key_values=cache,
        ).logits[:, -1]
    return _p_matching(logits, [d for d in decisions for _ in multipliers])


def evaluate_ab(
    model: Any,
    tokenizer: Any,
    data: Any,
    steering: Any = None,
    *,
    multipliers: Sequence[float] = (0.0,),
    positions: PositionPolicy | str = "after_prompt",
    batch_size: int = 16,
    progress: bool = True,
) -> ABResult:
    """p(matching) = p(match token) / (p(match) + p(other)) at the answer position, per multiplier.

    With ``steering`` (a vector/artifact), each multiplier is one row alpha of a batched forward.
    """
    items = [i for i in load_contrast_data(data) if isinstance(i, ABItem)]
    if not items:
        raise DataError("A/B evaluation needs A/B items (question, answer_matching_behavior, ...).")
    decisions = [_decision(tokenizer, item) for item in items]
    pad = tokenizer.pad_token_id
    found: dict[tuple[float, int], float] = {}
    per_chunk = max(1, batch_size // len(multipliers)) if steering is not None else batch_size
    for start in tqdm(range(0, len(items), per_chunk), desc="A/B eval", disable=not progress):
        indices = list(range(start, min(start + per_chunk, len(items))))
        chunk = [decisions[i] for i in indices]
        shared = None
        if steering is not None and positions == "after_prompt":
            shared = _shared_prefix_probs(model, chunk, multipliers, steering, pad)
        if shared is not None:
            rows = [(float(m), i) for i in indices for m in multipliers]
            found.update(zip(rows, shared, strict=True))
            continue
        for m in multipliers if steering is not None else [0.0]:
            ids, mask = pad_rows([d[0] for d in chunk], pad, left=True)
            check_context(model, ids.shape[1])
            context = steer(model, steering, alpha=m, positions=positions) if steering is not None else nullcontext()
            with context, torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0))
            found.update(zip([(float(m), i) for i in indices], _p_matching(logits.logits[:, -1], chunk), strict=True))
    if steering is None:  # no vector: every multiplier is the unsteered model
        found = {(float(m), i): found[(0.0, i)] for m in multipliers for i in range(len(items))}
    records: list[dict[str, Any]] = [
        {"multiplier": float(m), "item": i, "p_matching": found[(float(m), i)], "matching": items[i].matching}
        for m in multipliers
        for i in range(len(items))
    ]
    per_m = {float(m): [r["p_matching"] for r in records if r["multiplier"] == float(m)] for m in multipliers}
    return ABResult(
        multipliers=[float(m) for m in multipliers],
        p_matching={m: sum(v) / len(v) for m, v in per_m.items()},
        matching_rate={m: sum(x > 0.5 for x in v) / len(v) for m, v in per_m.items()},
        records=records,
    )

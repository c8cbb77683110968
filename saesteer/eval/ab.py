"""CAA's A/B protocol: p(matching answer letter) at the answer position, across steering multipliers."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from saesteer.data.chat import chat_prompt, has_chat_template
from saesteer.data.pairs import ABItem, load_contrast_data
from saesteer.errors import DataError
from saesteer.models.layers import check_context
from saesteer.runtime.steer import steer


@dataclass
class ABResult:
    """Mean normalised p(matching) per multiplier, plus one record per (item, multiplier)."""

    multipliers: list[float]
    p_matching: dict[float, float]
    matching_rate: dict[float, float]
    records: list[dict[str, Any]] = field(default_factory=list)


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


def evaluate_ab(
    model: Any,
    tokenizer: Any,
    data: Any,
    steering: Any = None,
    *,
    multipliers: Sequence[float] = (0.0,),
    positions: str = "after_prompt",
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
    rows = [(m, i) for m in multipliers for i in range(len(items))]
    pad = tokenizer.pad_token_id
    probs: list[float] = []
    for start in tqdm(range(0, len(rows), batch_size), desc="A/B eval", disable=not progress):
        chunk = rows[start : start + batch_size]
        prompts = [decisions[i][0] for _, i in chunk]
        width = max(len(p) for p in prompts)
        check_context(model, width)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention,
            "position_ids": (attention.cumsum(dim=1) - 1).clamp(min=0),
        }
        alphas = [m for m, _ in chunk]
        context = steer(model, steering, alpha=alphas, positions=positions) if steering is not None else nullcontext()
        with context, torch.no_grad():
            logits = model(**inputs).logits[:, -1]
        p = logits.double().softmax(-1)
        for row, (_, i) in enumerate(chunk):
            _, match_id, other_id = decisions[i]
            probs.append(float(p[row, match_id] / (p[row, match_id] + p[row, other_id])))
    records: list[dict[str, Any]] = [
        {"multiplier": float(m), "item": i, "p_matching": pm, "matching": items[i].matching}
        for (m, i), pm in zip(rows, probs, strict=True)
    ]
    per_m = {float(m): [r["p_matching"] for r in records if r["multiplier"] == float(m)] for m in multipliers}
    return ABResult(
        multipliers=[float(m) for m in multipliers],
        p_matching={m: sum(v) / len(v) for m, v in per_m.items()},
        matching_rate={m: sum(x > 0.5 for x in v) / len(v) for m, v in per_m.items()},
        records=records,
    )

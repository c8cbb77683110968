"""Batched greedy generation from chat prompts, optionally steered, incl. one-call factor sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch
from tqdm.auto import tqdm

from saesteer.data.chat import chat_prompt, encode, has_chat_template
from saesteer.models.layers import check_context
from saesteer.runtime.positions import PositionPolicy
from saesteer.runtime.steer import steer


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 40,
    steering: Any = None,
    alpha: float | Sequence[float] = 1.0,
    positions: PositionPolicy | str | None = None,
    batch_size: int = 8,
    chat: bool = True,
    progress: bool = False,
) -> list[str]:
    """Greedy completions (special tokens stripped) of ``prompts``; ``alpha`` may be one per prompt."""
    alphas = list(alpha) if isinstance(alpha, Sequence) else None
    texts = [chat_prompt(tokenizer, p) if chat else p for p in prompts]
    templated = chat and has_chat_template(tokenizer)
    outputs: list[str] = []
    for start in tqdm(range(0, len(texts), batch_size), desc="generate", disable=not progress):
        chunk = texts[start : start + batch_size]
        batch = encode(tokenizer, chunk, templated=templated)
        check_context(model, batch["input_ids"].shape[1] + max_new_tokens)
        row_alpha = alphas[start : start + batch_size] if alphas is not None else alpha
        context = (
            steer(model, steering, alpha=row_alpha, positions=positions) if steering is not None else nullcontext()
        )
        with context, torch.no_grad():
            out = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        outputs.extend(t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return outputs


def sweep(
    model: Any,
    tokenizer: Any,
    steering: Any,
    prompts: Sequence[str],
    alphas: Sequence[float],
    **kwargs: Any,
) -> dict[float, list[str]]:
    """Completions for every (alpha, prompt), as batched generate calls with per-row alphas."""
    rows = [(a, p) for a in alphas for p in prompts]
    texts = generate(model, tokenizer, [p for _, p in rows], steering=steering, alpha=[a for a, _ in rows], **kwargs)
    grid: dict[float, list[str]] = {float(a): [] for a in alphas}
    for (a, _), text in zip(rows, texts, strict=True):
        grid[float(a)].append(text)
    return grid

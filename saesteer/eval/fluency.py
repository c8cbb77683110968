"""Fluency proxy: perplexity of a completion under the unsteered model (named as a proxy in reports)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from saesteer.data.examples import pack, prompt_ids


def perplexity(
    model: Any, tokenizer: Any, prompts: Sequence[str], completions: Sequence[str], *, batch_size: int = 8
) -> list[float]:
    """exp(mean NLL of the completion tokens given the chat prompt), one value per pair."""
    results: list[float] = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(zip(prompts[start : start + batch_size], completions[start : start + batch_size], strict=True))
        heads = [prompt_ids(tokenizer, prompt) for prompt, _ in chunk]
        tails = [tokenizer(c, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id] for _, c in chunk]
        batch = pack(tokenizer, heads, tails, left=True)
        with torch.no_grad():
            logits = model(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids
            ).logits.double()
        labels = batch.labels
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="none"
        )
        counts = (labels[:, 1:] != -100).sum(dim=1)
        results.extend(torch.exp(nll.sum(dim=1) / counts).tolist())
    return results

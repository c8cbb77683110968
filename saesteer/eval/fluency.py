"""Fluency proxy: perplexity of a completion under the unsteered model (named as a proxy in reports)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from saesteer.data.chat import chat_prompt, has_chat_template


def perplexity(
    model: Any, tokenizer: Any, prompts: Sequence[str], completions: Sequence[str], *, batch_size: int = 8
) -> list[float]:
    """exp(mean NLL of the completion tokens given the chat prompt), one value per pair."""
    templated = has_chat_template(tokenizer)
    results: list[float] = []
    for start in range(0, len(prompts), batch_size):
        rows = []
        for prompt, completion in zip(
            prompts[start : start + batch_size], completions[start : start + batch_size], strict=True
        ):
            head = tokenizer(chat_prompt(tokenizer, prompt), add_special_tokens=not templated)["input_ids"]
            tail = tokenizer(completion, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
            rows.append((head, tail))
        width = max(len(h) + len(t) for h, t in rows)
        pad = tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(h) - len(t)) + h + t for h, t in rows])
        mask = torch.tensor([[0] * (width - len(h) - len(t)) + [1] * (len(h) + len(t)) for h, t in rows])
        labels = torch.full_like(ids, -100)
        for row, (_, tail) in enumerate(rows):
            labels[row, width - len(tail) :] = torch.tensor(tail)
        position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits.double()
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="none"
        )
        counts = (labels[:, 1:] != -100).sum(dim=1)
        results.extend(torch.exp(nll.sum(dim=1) / counts).tolist())
    return results

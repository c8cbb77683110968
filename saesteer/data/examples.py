"""Chat prompt + response token batches for training and scoring (labels on the response tokens only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saesteer.data.chat import chat_prompt, has_chat_template
from saesteer.errors import DataError


@dataclass
class TokenBatch:
    """Right-padded chat prompt + response; ``labels`` are -100 outside the response."""

    input_ids: Tensor  # (B, T)
    attention_mask: Tensor  # (B, T)
    labels: Tensor  # (B, T)
    prompt: Tensor  # (B, T) bool, prompt tokens
    response: Tensor  # (B, T) bool, response tokens


def encode_examples(
    tokenizer: Any, instructions: Sequence[str], responses: Sequence[str], *, max_response_tokens: int
) -> TokenBatch:
    """Tokenize chat prompts and responses (cut to ``max_response_tokens``; eos appended when not cut)."""
    templated = has_chat_template(tokenizer)
    eos = tokenizer.eos_token_id
    rows = []
    for instruction, answer in zip(instructions, responses, strict=True):
        head = tokenizer(chat_prompt(tokenizer, instruction), add_special_tokens=not templated)["input_ids"]
        tail = tokenizer(answer, add_special_tokens=False)["input_ids"]
        tail = tail[:max_response_tokens] if len(tail) >= max_response_tokens or eos is None else [*tail, eos]
        if not tail:
            raise DataError(f"Empty response for {instruction[:60]!r}. Fix: drop the row or give it a response.")
        rows.append((head, tail))
    width = max(len(h) + len(t) for h, t in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    prompt = torch.zeros(len(rows), width, dtype=torch.bool)
    response = torch.zeros_like(prompt)
    for row, (head, tail) in enumerate(rows):
        end = len(head) + len(tail)
        ids[row, :end] = torch.tensor(head + tail)
        labels[row, len(head) : end] = torch.tensor(tail)
        prompt[row, : len(head)] = True
        response[row, len(head) : end] = True
    return TokenBatch(ids, (prompt | response).long(), labels, prompt, response)

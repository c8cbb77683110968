"""The one prompt + response tokenisation: chat prompt ids, response ids, padded together into a batch
(left or right) with prompt/response masks and labels on the response tokens only."""

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
    """Padded chat prompt + response; ``labels`` are the response tokens, -100 elsewhere (not shifted)."""

    input_ids: Tensor  # (B, T)
    attention_mask: Tensor  # (B, T)
    labels: Tensor  # (B, T)
    prompt: Tensor  # (B, T) bool, prompt tokens
    response: Tensor  # (B, T) bool, response tokens

    @property
    def position_ids(self) -> Tensor:
        """Positions that follow the mask (as ``generate`` numbers left-padded rows)."""
        return (self.attention_mask.cumsum(dim=1) - 1).clamp(min=0)


def prompt_ids(tokenizer: Any, prompt: str, system: str | None = None) -> list[int]:
    """Token ids of the chat prompt for ``prompt`` after an optional ``system`` turn (templated text already
    holds its special tokens)."""
    templated = has_chat_template(tokenizer)
    text = chat_prompt(tokenizer, prompt, system=system)
    return list(tokenizer(text, add_special_tokens=not templated)["input_ids"])


def pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if getattr(tokenizer, "pad_token_id", None) is not None else 0


def pad_rows(rows: Sequence[Sequence[int]], pad: int, *, left: bool) -> tuple[Tensor, Tensor]:
    """Token rows padded to one width (left or right): (input_ids, attention_mask), both long."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for row, tokens in enumerate(rows):
        start = width - len(tokens) if left else 0
        ids[row, start : start + len(tokens)] = torch.tensor(list(tokens), dtype=torch.long)
        mask[row, start : start + len(tokens)] = 1
    return ids, mask


def pack(tokenizer: Any, heads: Sequence[Sequence[int]], tails: Sequence[Sequence[int]], *, left: bool) -> TokenBatch:
    """Prompt ids ``heads`` followed by response ids ``tails``, padded into one batch."""
    ids, mask = pad_rows([[*h, *t] for h, t in zip(heads, tails, strict=True)], pad_id(tokenizer), left=left)
    labels = torch.full_like(ids, -100)
    prompt = torch.zeros(ids.shape, dtype=torch.bool)
    response = torch.zeros_like(prompt)
    for row, (head, tail) in enumerate(zip(heads, tails, strict=True)):
        start = ids.shape[1] - len(head) - len(tail) if left else 0
        middle, end = start + len(head), start + len(head) + len(tail)
        prompt[row, start:middle] = True
        response[row, middle:end] = True
        labels[row, middle:end] = torch.tensor(list(tail), dtype=torch.long)
    return TokenBatch(ids, mask, labels, prompt, response)


def encode_examples(
    tokenizer: Any, instructions: Sequence[str], responses: Sequence[str], *, max_response_tokens: int
) -> TokenBatch:
    """Tokenize chat prompts and responses, right padded (cut to ``max_response_tokens``; eos appended
    when not cut)."""
    eos = tokenizer.eos_token_id
    heads, tails = [], []
    for instruction, answer in zip(instructions, responses, strict=True):
        tail = tokenizer(answer, add_special_tokens=False)["input_ids"]
        tail = tail[:max_response_tokens] if len(tail) >= max_response_tokens or eos is None else [*tail, eos]
        if not tail:
            raise DataError(f"Empty response for {instruction[:60]!r}. Fix: drop the row or give it a response.")
        heads.append(prompt_ids(tokenizer, instruction))
        tails.append(tail)
    return pack(tokenizer, heads, tails, left=False)

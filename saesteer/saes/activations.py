"""Harvest residual-stream activations from a plain HF model for SAE training."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from saesteer.errors import DataError
from saesteer.runtime.capture import capture
from saesteer.runtime.intervention import HookPoint


def token_windows(tokenizer: Any, texts: Iterable[str], context: int) -> Iterator[list[int]]:
    """Concatenate tokenized texts (eos between them) and cut fixed-length windows."""
    buffer: list[int] = []
    separator = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for text in texts:
        buffer.extend(tokenizer(text, add_special_tokens=False)["input_ids"] + separator)
        while len(buffer) >= context:
            yield buffer[:context]
            buffer = buffer[context:]


def harvest(
    model: Any,
    tokenizer: Any,
    texts: Iterable[str],
    *,
    layer: int,
    n_tokens: int,
    hook_point: HookPoint = "resid_post",
    context: int = 128,
    batch_size: int = 8,
    progress: bool = True,
) -> Tensor:
    """(n_tokens, d) float32 activations at ``layer``. Position 0 of every window is dropped: it is an
    attention sink whose norm is ~100x the others and would dominate the SAE's reconstruction loss."""
    chunks: list[Tensor] = []
    collected = 0
    windows = token_windows(tokenizer, texts, context)
    bar = tqdm(total=n_tokens, desc=f"activations L{layer}", unit="tok", disable=not progress)
    while collected < n_tokens:
        batch = list(islice(windows, batch_size))
        if not batch:
            break
        ids = torch.tensor(batch)
        hidden = capture(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, [layer], hook_point)[layer]
        acts = hidden[:, 1:].reshape(-1, hidden.shape[-1]).float()
        chunks.append(acts)
        collected += acts.shape[0]
        bar.update(acts.shape[0])
    bar.close()
    if collected < n_tokens:
        raise DataError(
            f"The corpus gave only {collected} tokens, {n_tokens} were asked for. "
            "Fix: use a larger corpus or fewer tokens."
        )
    return torch.cat(chunks)[:n_tokens]

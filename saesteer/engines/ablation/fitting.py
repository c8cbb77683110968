"""The diff-mean direction (Arditi et al. 2024): mean activation with the instruction minus without, normalised."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from saesteer.data.chat import chat_prompt, has_chat_template
from saesteer.engines.caa.fitting import Read, Span, read_activations
from saesteer.errors import DataError
from saesteer.runtime.intervention import HookPoint

ReadAt = Literal["last", "instruction"]


def _span(tokenizer: Any, prompt: str, system: str | None, read: ReadAt) -> Span:
    text = chat_prompt(tokenizer, prompt, system=system)
    if read == "last":
        return Span(text, 0, len(text), has_chat_template(tokenizer))
    start = text.rfind(prompt)
    if start < 0:
        raise DataError(f"Prompt {prompt[:60]!r} is not in its chat-formatted text. Fix: use read='last'.")
    return Span(text, start, start + len(prompt), has_chat_template(tokenizer))


def prompted_activations(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    instruction: str,
    *,
    layer: int,
    read: ReadAt = "last",
    hook_point: HookPoint = "resid_post",
    batch_size: int = 8,
    progress: bool = True,
) -> tuple[Tensor, Tensor]:
    """(N, d) float64 activations of ``layer`` for each prompt with ``instruction`` as system prompt and without:
    at the last prompt token (``read="last"``) or averaged over the user prompt's tokens (``"instruction"``)."""
    pooled: Read = "last" if read == "last" else "mean"
    with_: list[Tensor] = []
    without: list[Tensor] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="ablation activations", disable=not progress):
        chunk = prompts[start : start + batch_size]
        for system, out in ((instruction, with_), (None, without)):
            spans = [_span(tokenizer, prompt, system, read) for prompt in chunk]
            out.append(read_activations(model, tokenizer, spans, [layer], pooled, hook_point)[layer])
    return torch.cat(with_), torch.cat(without)


def diff_mean_direction(prompted: Tensor, unprompted: Tensor) -> tuple[Tensor, dict[str, float]]:
    """The unit direction of mean(prompted) - mean(unprompted) and how well it separates the two sets."""
    diff = prompted.mean(dim=0) - unprompted.mean(dim=0)
    norm = float(diff.norm())
    if norm == 0.0:
        raise DataError("Prompted and unprompted activations have the same mean. Fix: use a stronger instruction.")
    unit = diff / norm
    on, off = prompted @ unit, unprompted @ unit
    metrics = {
        "diff_norm": norm,
        "projection_prompted": float(on.mean()),
        "projection_unprompted": float(off.mean()),
        "pair_separation": float((on > off).double().mean()),
        "n_prompts": float(prompted.shape[0]),
    }
    return unit, metrics

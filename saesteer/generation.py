"""The one generation service: batched greedy (or sampled) completions of chat prompts, optionally steered
with per-row alphas, optionally reading the hidden state of every decoding step and the first step's logits.

``complete`` returns texts (special tokens stripped, whitespace trimmed) and the generated token ids;
``generate`` is its texts; ``sweep`` runs a factor grid as per-row alphas of the same batches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from saesteer.data.chat import chat_prompt, encode, has_chat_template
from saesteer.models.layers import check_context, decoder_layers
from saesteer.runtime.capture import add_reader
from saesteer.runtime.intervention import HookPoint
from saesteer.runtime.positions import PositionPolicy
from saesteer.runtime.steer import steer


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """End-of-sequence ids: the model's generation config eos (one or a list) and the tokenizer's eos."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    token = getattr(tokenizer, "eos_token_id", None)
    return ids | ({token} if token is not None else set())


def cut_at_eos(tokens: Sequence[int], eos: set[int], pad: int | None = None) -> list[int]:
    """Generated tokens through the first end-of-sequence id; without one, all of them (``pad`` ids dropped
    when given: PSR's rule for its response ids)."""
    for index, token in enumerate(tokens):
        if token in eos:
            return list(tokens[: index + 1])
    return [t for t in tokens if t != pad] if pad is not None else list(tokens)


def valid_steps(generated: Tensor, eos: set[int], steps: int) -> Tensor:
    """(B, steps) bool: step t read the input that produced generated token t; it counts while no EOS was
    generated before it (the step that produces EOS still counts)."""
    is_eos = torch.zeros_like(generated, dtype=torch.bool)
    for token in eos:
        is_eos |= generated == token
    before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()
    return (before == 0)[:, :steps]


@dataclass
class Completions:
    """What ``complete`` returns, one row per prompt in prompt order.

    ``ids``: the generated token ids of each row (a batch's rows are padded to its longest; see ``cut_at_eos``).
    ``first_logits``: (n, vocab) float logits of the first generated token (the last prompt position), if asked.
    ``reads``: layer -> (n, steps, d) hidden state at the last position of every forward (the last prompt token
    at prefill, then each new token), if asked; ``read_valid`` (n, steps) marks the steps that produced a
    generated token up to and including the first EOS (steps past a batch's end are zeros and invalid).
    """

    texts: list[str]
    ids: list[list[int]]
    first_logits: Tensor | None = None
    reads: dict[int, Tensor] = field(default_factory=dict)
    read_valid: Tensor | None = None


def _readers(model: Any, layers: Sequence[int], hook_point: HookPoint) -> tuple[dict[int, list[Tensor]], list[Any]]:
    blocks = decoder_layers(model)
    steps: dict[int, list[Tensor]] = {layer: [] for layer in layers}

    def reader(layer: int) -> Callable[[Tensor], None]:
        def read(hidden: Tensor) -> None:
            steps[layer].append(hidden[:, -1].detach())

        return read

    handles = []
    try:
        for layer in layers:
            handles.append(add_reader(blocks[layer], hook_point, reader(layer)))
    except BaseException:
        for handle in handles:
            handle.remove()
        raise
    return steps, handles


def _pad_steps(parts: list[Tensor]) -> Tensor:
    """Concatenate (B_i, steps_i, ...) batches along rows; shorter batches' missing steps are zeros."""
    if len(parts) == 1:
        return parts[0]
    out = parts[0].new_zeros((sum(p.shape[0] for p in parts), max(p.shape[1] for p in parts), *parts[0].shape[2:]))
    row = 0
    for part in parts:
        out[row : row + part.shape[0], : part.shape[1]] = part
        row += part.shape[0]
    return out


def complete(
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
    templated: bool | None = None,
    sampling: Mapping[str, Any] | None = None,
    seed: int | None = None,
    logits: bool = False,
    read_layers: Sequence[int] = (),
    read_at: HookPoint = "resid_post",
    progress: bool = False,
    desc: str = "generate",
) -> Completions:
    """Completions of ``prompts`` in batches of ``batch_size``.

    ``chat``: wrap each prompt in the chat template (or the plain User/Assistant frame). ``templated``: the
    prompt text already holds its special tokens (no second BOS); default ``chat`` and the tokenizer has a
    template (CorrSteer passes ``templated=task.chat``, its historical rule). ``sampling``: None is greedy,
    else ``do_sample=True`` with these generate kwargs (e.g. temperature). ``seed``: ``torch.manual_seed``
    before the first batch. ``alpha`` may be one value per prompt. ``read_layers`` are read before steering
    edits them (readers are registered first). A ``saesteer.backends.vllm.VLLMModel`` as ``model`` runs the
    same request on vLLM (all prompts at once; ``read_layers`` is HF-only).
    """
    if getattr(model, "backend", "hf") == "vllm":  # saesteer.backends.vllm.VLLMModel: same contract
        return model.complete(
            prompts,
            max_new_tokens=max_new_tokens,
            steering=steering,
            alpha=alpha,
            positions=positions,
            chat=chat,
            templated=templated,
            sampling=sampling,
            seed=seed,
            logits=logits,
            progress=progress,
            read_layers=read_layers,
        )
    alphas = list(alpha) if isinstance(alpha, Sequence) else None
    texts = [chat_prompt(tokenizer, p) if chat else p for p in prompts]
    special = (chat and has_chat_template(tokenizer)) if templated is None else templated
    options = {"do_sample": True, **sampling} if sampling is not None else {"do_sample": False}
    eos = eos_ids(model, tokenizer)
    done = Completions([], [])
    first: list[Tensor] = []
    reads: dict[int, list[Tensor]] = {layer: [] for layer in read_layers}
    valid: list[Tensor] = []
    if seed is not None:
        torch.manual_seed(seed)
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, disable=not progress):
        batch = encode(tokenizer, texts[start : start + batch_size], templated=special)
        check_context(model, batch["input_ids"].shape[1] + max_new_tokens)
        row_alpha = alphas[start : start + batch_size] if alphas is not None else alpha
        steps, handles = _readers(model, read_layers, read_at)
        try:
            context = (
                steer(model, steering, alpha=row_alpha, positions=positions) if steering is not None else nullcontext()
            )
            with context, torch.no_grad():
                out = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    output_logits=logits,
                    return_dict_in_generate=True,
                    **options,
                )
        finally:
            for handle in handles:
                handle.remove()
        generated = out.sequences[:, batch["input_ids"].shape[1] :]
        done.texts.extend(t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True))
        done.ids.extend(generated.tolist())
        if logits:
            first.append(out.logits[0].float())
        if read_layers:
            for layer in read_layers:
                reads[layer].append(torch.stack(steps[layer], dim=1))
            valid.append(valid_steps(generated, eos, len(steps[read_layers[0]])))
    if first:
        done.first_logits = torch.cat(first)
    if valid:
        done.reads = {layer: _pad_steps(parts) for layer, parts in reads.items()}
        done.read_valid = _pad_steps(valid)
    return done


def generate(model: Any, tokenizer: Any, prompts: Sequence[str], **options: Any) -> list[str]:
    """The texts of ``complete`` (greedy unless ``sampling=``): special tokens stripped, one per prompt."""
    return complete(model, tokenizer, prompts, **options).texts


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

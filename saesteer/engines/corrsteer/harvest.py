"""CorrSteer's harvest: greedy generation on a task, SAE latents pooled per sample at the generating
positions, streamed into float64 FeatureStats against the reward."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from saesteer.data.chat import chat_prompt, encode
from saesteer.distributed import gather, world
from saesteer.errors import ConfigError, DataError
from saesteer.models.layers import check_context, check_layer, decoder_layers
from saesteer.runtime.capture import add_reader
from saesteer.runtime.intervention import HookPoint
from saesteer.saes import check_sae_fits
from saesteer.stats import FeatureStats
from saesteer.tasks.base import Sample, Split, Task

Pool = Literal["max", "mean"]


@dataclass
class Generation:
    """One sample's greedy generation, its reward, and its strongest pooled latents per layer."""

    id: str
    generation: str
    reward: float
    top_latents: dict[int, list[tuple[int, float]]] = field(default_factory=dict)


def _prompts(tokenizer: Any, task: Task, samples: Sequence[Sample]) -> list[str]:
    return [chat_prompt(tokenizer, s.prompt) if task.chat else s.prompt for s in samples]


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    return ids | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


def _valid_steps(generated: Tensor, eos: set[int], steps: int) -> Tensor:
    """(B, steps) bool: step t reads the input that produced generated token t; it counts while no EOS
    was generated before it (the step that produces EOS still counts)."""
    is_eos = torch.zeros_like(generated, dtype=torch.bool)
    for token in eos:
        is_eos |= generated == token
    before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()
    return (before == 0)[:, :steps]


def _pool(latents: Tensor, valid: Tensor, pool: Pool) -> Tensor:
    mask = valid[..., None].to(latents.dtype)
    if pool == "max":
        return (latents * mask).amax(dim=1)  # latents are >= 0, so masked steps never win
    return (latents * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def generate_and_read(
    model: Any,
    tokenizer: Any,
    task: Task,
    samples: Sequence[Sample],
    saes: dict[int, Any],
    *,
    hook_point: HookPoint,
    pool: Pool,
    steering: Any = None,
) -> tuple[list[str], Tensor]:
    """Greedy generations and pooled SAE latents (B, L, D) at the CorrSteer positions."""
    from saesteer.runtime.steer import steer

    layers = sorted(saes)
    blocks = decoder_layers(model)
    steps: dict[int, list[Tensor]] = {layer: [] for layer in layers}

    def reader(layer: int) -> Callable[[Tensor], None]:
        def read(hidden: Tensor) -> None:
            steps[layer].append(hidden[:, -1].detach())  # last prompt token at prefill, then each new token

        return read

    batch = encode(tokenizer, _prompts(tokenizer, task, samples), templated=task.chat)
    check_context(model, batch["input_ids"].shape[1] + task.max_new_tokens)
    handles = []
    try:
        for layer in layers:
            handles.append(add_reader(blocks[layer], hook_point, reader(layer)))
        context = steer(model, steering) if steering is not None else nullcontext()
        with context, torch.no_grad():
            out = model.generate(
                **batch, max_new_tokens=task.max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
    finally:
        for handle in handles:
            handle.remove()
    generated = out[:, batch["input_ids"].shape[1] :]
    texts = [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
    if not layers:
        return texts, torch.zeros(len(samples), 0, 0)
    valid = _valid_steps(generated, _eos_ids(model, tokenizer), len(steps[layers[0]]))
    pooled = []
    for layer in layers:
        hidden = torch.stack(steps[layer], dim=1).float()  # (B, steps, d)
        with torch.no_grad():
            latents = saes[layer].encode(hidden)
        pooled.append(_pool(latents, valid, pool))
    return texts, torch.stack(pooled, dim=1)


@dataclass
class Harvest:
    stats: FeatureStats
    generations: list[Generation]
    layers: list[int]


def harvest(
    model: Any,
    tokenizer: Any,
    task: Task,
    saes: dict[int, Any],
    *,
    split: Split = "train",
    limit: int | None = None,
    pool: Pool = "max",
    hook_point: HookPoint = "resid_post",
    batch_size: int = 8,
    keep_top: int = 16,
    progress: bool = True,
    samples: Sequence[Sample] | None = None,
) -> Harvest:
    """Stream the train split through generate + SAEs into FeatureStats (memory flat in samples)."""
    if pool not in ("max", "mean"):
        raise ConfigError(f"Unknown pool {pool!r}. Fix: use 'max' or 'mean'.")
    layers = sorted(check_layer(model, layer) for layer in saes)
    if not layers:
        raise ConfigError("CorrSteer needs at least one layer with an SAE. Fix: train or add SAEs first.")
    widths = {saes[layer].cfg.d_sae for layer in layers}
    if len(widths) != 1:
        raise ConfigError(f"SAEs of different widths {sorted(widths)}. Fix: use SAEs of one width per harvest.")
    for layer in layers:
        check_sae_fits(model, saes[layer])
    items = list(samples if samples is not None else task.samples(split))[:limit]
    if not items:
        raise DataError(f"Task {task.name} has no {split} samples. Fix: use more data or another split.")
    stats = FeatureStats.empty(layers, widths.pop())
    records: list[tuple[int, Generation]] = []
    current = world()
    batches = current.my_batches(len(items), batch_size)
    for start, end in tqdm(batches, desc=f"harvest {task.name}", disable=not progress or not current.is_main):
        chunk = items[start:end]
        texts, pooled = generate_and_read(
            model, tokenizer, task, chunk, {index: saes[index] for index in layers}, hook_point=hook_point, pool=pool
        )
        rewards = torch.tensor([task.reward(s, t) for s, t in zip(chunk, texts, strict=True)], dtype=torch.float64)
        stats.update(pooled, rewards)
        for row, (sample, text) in enumerate(zip(chunk, texts, strict=True)):
            top = {}
            for index, layer in enumerate(layers):
                values, features = pooled[row, index].topk(min(keep_top, pooled.shape[-1]))
                top[layer] = [(int(f), float(v)) for f, v in zip(features, values, strict=True) if v > 0]
            records.append((start + row, Generation(sample.id, text, float(rewards[row]), top)))
    stats.all_reduce()  # float64 sums of every rank: equal to one pass over all samples
    ordered = [record for _, record in sorted(gather(records, current), key=lambda pair: pair[0])]
    return Harvest(stats, ordered, layers)

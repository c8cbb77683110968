"""CorrSteer's harvest: greedy generation on a task, SAE latents pooled per sample at the generating
positions, streamed into float64 FeatureStats against the reward.

Pooled steps follow CorrSteer's train.py (``get_eos_positions`` + ``_pool_activations``): step t read the
input that produced generated token t; a sample pools the steps before its first EOS or pad token (the step
that produced it is left out; a sample whose first token ends it pools nothing), and a multiple-choice task
(``multiple_choice = True``, e.g. MMLU) pools its first step whatever it produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from saesteer.distributed import gather, world
from saesteer.errors import ConfigError, DataError
from saesteer.generation import Completions, complete, eos_ids
from saesteer.models.layers import check_layer
from saesteer.runtime.intervention import HookPoint
from saesteer.saes import check_sae_fits
from saesteer.stats import FeatureStats
from saesteer.tasks.base import Sample, Split, Task
from saesteer.tasks.base import rewards as task_rewards

Pool = Literal["max", "mean"]


@dataclass
class Generation:
    """One sample's greedy generation, its reward, and its strongest pooled latents per layer."""

    id: str
    generation: str
    reward: float
    top_latents: dict[int, list[tuple[int, float]]] = field(default_factory=dict)


def _pool(latents: Tensor, valid: Tensor, pool: Pool) -> Tensor:
    mask = valid[..., None].to(latents.dtype)
    if pool == "max":
        return (latents * mask).amax(dim=1)  # latents are >= 0, so masked steps never win
    return (latents * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def pooled_steps(ids: Sequence[Sequence[int]], stop: set[int], steps: int, *, first_only: bool = False) -> Tensor:
    """(B, steps) bool: the steps CorrSteer pools, those before each row's first ``stop`` token (the first
    step only with ``first_only``)."""
    valid = torch.zeros(len(ids), steps, dtype=torch.bool)
    for row, tokens in enumerate(ids):
        end = 1 if first_only else next((i for i, token in enumerate(tokens) if token in stop), len(tokens))
        valid[row, : min(end, steps)] = True
    return valid


def stop_ids(model: Any, tokenizer: Any) -> set[int]:
    """The tokens that end a sample's pooled steps: the end-of-sequence ids generation stops on, and pad."""
    pad = getattr(tokenizer, "pad_token_id", None)
    return eos_ids(model, tokenizer) | ({pad} if pad is not None else set())


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
) -> tuple[Completions, Tensor]:
    """One batch of greedy generations (first-step logits when the task scores them) and the pooled SAE
    latents (B, L, D) at the CorrSteer positions: the steps that produced the generated tokens before the
    first EOS/pad (a multiple-choice task: the first step)."""
    layers = sorted(saes)
    done = complete(
        model,
        tokenizer,
        [s.prompt for s in samples],
        max_new_tokens=task.max_new_tokens,
        steering=steering,
        batch_size=max(1, len(samples)),
        chat=task.chat,
        templated=task.chat,
        logits=task.needs_logits,
        read_layers=layers,
        read_at=hook_point,
    )
    if not layers or done.read_valid is None:
        return done, torch.zeros(len(samples), 0, 0)
    steps = done.read_valid.shape[1]
    first_only = bool(getattr(task, "multiple_choice", False))
    valid = pooled_steps(done.ids, stop_ids(model, tokenizer), steps, first_only=first_only)
    pooled = []
    for layer in layers:
        with torch.no_grad():
            latents = saes[layer].encode(done.reads[layer].float())  # (B, steps, d_sae)
        pooled.append(_pool(latents, valid, pool))
    return done, torch.stack(pooled, dim=1)


@dataclass
class Harvest:
    """The statistics, each sample's generation, the layers read and the prompts harvested (in order)."""

    stats: FeatureStats
    generations: list[Generation]
    layers: list[int]
    prompts: list[str] = field(default_factory=list)


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
        done, pooled = generate_and_read(
            model, tokenizer, task, chunk, {index: saes[index] for index in layers}, hook_point=hook_point, pool=pool
        )
        texts = done.texts
        rewards = torch.tensor(task_rewards(task, chunk, texts, done.first_logits), dtype=torch.float64)
        stats.update(pooled, rewards)
        for row, (sample, text) in enumerate(zip(chunk, texts, strict=True)):
            top = {}
            for index, layer in enumerate(layers):
                values, features = pooled[row, index].topk(min(keep_top, pooled.shape[-1]))
                top[layer] = [(int(f), float(v)) for f, v in zip(features, values, strict=True) if v > 0]
            records.append((start + row, Generation(sample.id, text, float(rewards[row]), top)))
    stats.all_reduce()  # float64 sums of every rank: equal to one pass over all samples
    ordered = [record for _, record in sorted(gather(records, current), key=lambda pair: pair[0])]
    return Harvest(stats, ordered, layers, [sample.prompt for sample in items])

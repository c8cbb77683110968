"""Run a task: generate for its samples (optionally steered, per-row alphas) with the one generation service
and score the generations with the task, batch by batch. Used by ``eval task``, the bench and CorrSteer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from saesteer.generation import complete, cut_at_eos, eos_ids
from saesteer.runtime.positions import PositionPolicy
from saesteer.tasks.base import Sample, Task


@dataclass
class Scored:
    """One sample's generation: the prompt sent, the output, every score, the reward and the tokens to EOS."""

    sample: Sample
    prompt: str
    generation: str
    scores: dict[str, Any]
    reward: float
    n_tokens: int


def run_task(
    model: Any,
    tokenizer: Any,
    task: Task,
    samples: Sequence[Sample],
    *,
    steering: Any = None,
    alpha: float | Sequence[float] = 1.0,
    positions: PositionPolicy | str | None = None,
    prompts: Sequence[str] | None = None,
    batch_size: int = 8,
    temperature: float = 0.0,
    seed: int | None = None,
    templated: bool | None = None,
) -> list[Scored]:
    """Generations and scores of ``samples``; ``prompts`` replaces the samples' prompts (the prompting
    baseline) while scoring still sees the samples. ``temperature`` > 0 samples with top_p 1 and top_k 50
    (HF ``generate``'s defaults, which AxBench samples with; set on both backends): on HF after
    ``torch.manual_seed(seed)``, on vLLM with request i seeded ``seed + i`` (reproducible per backend, not
    across them). ``templated`` as in ``generation.complete``. A ``backends.vllm.VLLMModel`` gets every
    sample in one ``complete`` call (continuous batching; ``batch_size`` is the HF batch)."""
    sent = list(prompts) if prompts is not None else [s.prompt for s in samples]
    alphas = list(alpha) if isinstance(alpha, Sequence) else None
    sampling: Mapping[str, Any] | None = (
        {"temperature": temperature, "top_p": 1.0, "top_k": 50} if temperature > 0 else None
    )
    eos = eos_ids(model, tokenizer)
    vllm = getattr(model, "backend", "hf") == "vllm"
    step = max(1, len(samples)) if vllm else batch_size
    if seed is not None and not vllm:
        torch.manual_seed(seed)
    results: list[Scored] = []
    for start in range(0, len(samples), step):
        chunk = list(samples[start : start + step])
        texts = sent[start : start + step]
        done = complete(
            model,
            tokenizer,
            texts,
            max_new_tokens=task.max_new_tokens,
            steering=steering,
            alpha=alphas[start : start + step] if alphas is not None else alpha,
            positions=positions,
            batch_size=len(chunk),
            chat=task.chat,
            templated=templated,
            sampling=sampling,
            seed=seed if vllm else None,
            logits=task.needs_logits,
        )
        scores = task.score(chunk, done.texts, done.first_logits)
        reward = task.metrics[0]
        results.extend(
            Scored(sample, text, output, score, float(score[reward]), len(cut_at_eos(ids, eos)))
            for sample, text, output, score, ids in zip(chunk, texts, done.texts, scores, done.ids, strict=True)
        )
    return results


def mean_reward(results: Sequence[Scored]) -> float:
    return sum(r.reward for r in results) / max(1, len(results))

"""PSR's strength calibration: binary search of alpha to a coherence target under a pluggable judge."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from torch import nn
from tqdm.auto import tqdm

from saesteer.engines.psr.artifact import PSRArtifact
from saesteer.engines.psr.data import Judge, Triplet
from saesteer.errors import ConfigError


def perplexity_judge(model: nn.Module, tokenizer: Any, batch_size: int = 8) -> Judge:
    """Coherence PROXY: mean token log-likelihood (= -log perplexity) of a response given its base prompt
    under the unsteered model; higher = more coherent. Blind to repetition loops; name it a proxy."""
    from saesteer.eval.fluency import perplexity

    def judge(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return [-math.log(p) for p in perplexity(model, tokenizer, prompts, responses, batch_size=batch_size)]

    return judge


def prompt_coherence(triplets: Sequence[Triplet], judge: Judge) -> float:
    """The judge's mean score of the prompt-steered responses y' given x (the TA@Cp target)."""
    scores = judge([t.prompt for t in triplets], [t.response for t in triplets])
    return sum(scores) / len(scores)


@dataclass
class Calibration:
    artifact: PSRArtifact  # with alpha set to the found strength
    target: float
    coherence: float  # judge's mean score at the found alpha
    reached: bool  # False: even the smallest alpha tried missed the target
    history: list[tuple[float, float]]  # (alpha, coherence) in the order tried


def calibrate(
    model: nn.Module,
    tokenizer: Any,
    artifact: PSRArtifact,
    prompts: Sequence[str],
    *,
    target: float,
    judge: Judge | None = None,
    high: float = 8.0,
    steps: int = 6,
    max_new_tokens: int = 48,
    batch_size: int = 8,
    progress: bool = True,
) -> Calibration:
    """Binary search for the largest alpha in [0, high] whose greedy outputs on ``prompts`` keep the
    judge's mean coherence >= ``target`` (coherence assumed to fall as alpha grows)."""
    from saesteer.generation import generate

    if not prompts or steps < 1 or not high > 0:
        raise ConfigError("Calibration needs prompts, steps >= 1 and high > 0. Fix: pass held-out prompts.")
    judge = judge or perplexity_judge(model, tokenizer, batch_size)
    unit = replace(artifact, alpha=1.0)
    history: list[tuple[float, float]] = []

    def coherence(alpha: float) -> float:
        texts = generate(
            model, tokenizer, prompts, steering=unit, alpha=alpha, max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        scores = judge(prompts, texts)
        history.append((alpha, sum(scores) / len(scores)))
        return history[-1][1]

    bar = tqdm(total=steps + 2, desc="PSR alpha search", disable=not progress)
    low, high_score = 0.0, coherence(high)
    bar.update(1)
    if high_score >= target:
        low, low_score = high, high_score
    else:
        low_score = coherence(0.0)
        bar.update(1)
        for _ in range(steps):
            middle = (low + high) / 2
            score = coherence(middle)
            low, low_score, high = (middle, score, high) if score >= target else (low, low_score, middle)
            bar.update(1)
    bar.close()
    config = {**artifact.config, "calibration": {"target": target, "history": history, "high": high}}
    found = replace(artifact, alpha=low, config=config)
    return Calibration(found, target, low_score, low_score >= target, history)

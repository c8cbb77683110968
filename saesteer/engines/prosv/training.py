"""PrOSV training: alpha and v jointly through the frozen model.

Intervention: h <- h + alpha * v at the output of block ``layer``, only on the first p and last s prompt tokens
("f{p}+l{s}", default f2+l2; p and s are capped at the prompt length, s = L - p if p + s > L), applied once at
prefill, so decode steps are untouched (an implicit KV-cache edit). ``positions="all"`` gives the FSSV baseline
(the same vector at every position, generated tokens included), trained and applied the same way.

Training: alpha (scalar) and v (vector) jointly with Adam in two parameter groups, initialised by the paper's
rule (n = hidden size): v0 ~ U(-lambda/sqrt(n), lambda/sqrt(n)), alpha0 = beta * sqrt(n); linear LR decay to 0
without warmup; gradient norm clipped to 1.0 on v only. beta, lambda, eta_alpha, eta_v, epochs and batch size
are the release's own values for a model of a released shape (``released``: Gemma-2-2B/9B/27B, Gemma-3-12B,
Qwen2.5-32B), else the Gemma-2-2B-L10 values with the rates moved by the width rule (eta_v = Theta(n^-1/2),
eta_alpha = Theta(n^1/2)); the artifact's ``config["hyper_source"]`` says which. Objectives: "lang"
(token-mean cross-entropy of the concept response, labels on response tokens only) and "simpo" (AxBench RePS
scaled SimPO, beta=1, gamma=0, scaler 1, concept response over neutral response, with a frozen unsteered
reference pass).

The trainable pair is applied through the runtime (``steer`` with a ``TrainableAdd`` on an ``ExplicitMask`` of
the training batch's positions), like any intervention. At inference alpha is used as trained (no factor
sweep): ``artifact.interventions(alpha=m)`` multiplies the trained alpha by ``m`` (1.0 = as trained; a per-row
list works too).

>>> triples = load_triples(sample_path("axbench/train.jsonl"), concept_id=2)
>>> artifact = train_vector(model, tokenizer, triples, ProsvConfig(layer=12, concept="C/C++ syntax"))
>>> store.save("cpp", artifact); generate(model, tokenizer, prompts, steering=store.load("cpp", model))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from saesteer.data.examples import TokenBatch, pack, prompt_ids
from saesteer.engines.frozen import frozen
from saesteer.engines.prosv.artifact import ProsvArtifact
from saesteer.engines.prosv.config import SIMPO_BETA, SIMPO_GAMMA, SIMPO_SCALER, ProsvConfig
from saesteer.engines.prosv.data import Triple
from saesteer.engines.prosv.released import Hyper
from saesteer.engines.protocol import Log
from saesteer.errors import DataError
from saesteer.models.layers import check_context, check_layer, hidden_size, num_layers
from saesteer.models.loading import model_id
from saesteer.runtime.intervention import Intervention
from saesteer.runtime.positions import ExplicitMask, PositionPolicy, PromptInfo, parse_positions
from saesteer.runtime.steer import steer
from saesteer.runtime.trainable import TrainableAdd


class ProsvParameters(nn.Module):
    """The trainable pair: factor alpha (scalar) and direction v (width,), initialised by the scaling rule."""

    def __init__(self, width: int, hyper: Hyper, generator: torch.Generator) -> None:
        super().__init__()
        bound = hyper.vector_init / math.sqrt(width)
        vector = torch.rand(width, generator=generator, dtype=torch.float32) * (2 * bound) - bound
        self.vector = nn.Parameter(vector)
        self.factor = nn.Parameter(torch.tensor(hyper.factor_init * math.sqrt(width), dtype=torch.float32))


def make_optimizer(
    params: ProsvParameters, hyper: Hyper, total_steps: int
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
    """Adam with a vector group and a factor group, and a linear decay to 0 over ``total_steps`` (no warmup)."""
    optimizer = torch.optim.Adam(
        [
            {"params": [params.vector], "lr": hyper.vector_lr, "name": "vector"},
            {"params": [params.factor], "lr": hyper.factor_lr, "name": "factor"},
        ]
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / total_steps))
    return optimizer, scheduler


def encode_batch(
    tokenizer: Any, instructions: Sequence[str], responses: Sequence[str], *, max_response_tokens: int
) -> TokenBatch:
    """Chat prompts + responses (cut to ``max_response_tokens``), right padded, with no EOS appended: the
    release trains on the response text alone (curate_training_data / curate_preference_training_data with
    ``eos_token=None``)."""
    tails = [tokenizer(r, add_special_tokens=False)["input_ids"][:max_response_tokens] for r in responses]
    for instruction, tail in zip(instructions, tails, strict=True):
        if not tail:
            raise DataError(f"Empty response for {instruction[:60]!r}. Fix: drop the row or give it a response.")
    return pack(tokenizer, [prompt_ids(tokenizer, i) for i in instructions], tails, left=False)


def training_mask(policy: PositionPolicy, batch: TokenBatch) -> Tensor:
    """(B, T) bool: the positions of prompt + response that the policy touches (prompt-only for f{p}+l{s})."""
    mask = policy.prompt_mask(PromptInfo(input_ids=batch.input_ids, valid=batch.prompt, end_markers=()))
    return mask | batch.response if policy.steers_generated else mask


def lang_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Token-mean cross-entropy over all labelled (response) tokens of the batch."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)


def sequence_logps(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Summed log-probabilities of the labelled tokens per row, and their counts."""
    targets = labels[:, 1:]
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), targets, ignore_index=-100, reduction="none")
    return -nll.sum(dim=1), (targets != -100).sum(dim=1)


def scaled_simpo_loss(
    policy_win: Tensor, policy_lose: Tensor, ref_win: Tensor, ref_lose: Tensor, len_win: Tensor, len_lose: Tensor
) -> Tensor:
    """RePS scaled SimPO: the winner's length-normalised log-prob is weighted by max(scaler * (ref_lose -
    ref_win), 1), so a winner the reference finds much less likely than the loser pulls harder."""
    weight = torch.clamp(SIMPO_SCALER * (ref_lose - ref_win), min=1.0)
    margin = weight / len_win * policy_win - policy_lose / len_lose
    return -F.logsigmoid(SIMPO_BETA * margin - SIMPO_GAMMA).mean()


def _forward(model: Any, batch: TokenBatch, device: torch.device) -> Tensor:
    inputs = {"input_ids": batch.input_ids.to(device), "attention_mask": batch.attention_mask.to(device)}
    return model(**inputs, use_cache=False).logits


def _step_loss(
    model: Any,
    tokenizer: Any,
    chunk: Sequence[Triple],
    config: ProsvConfig,
    policy: PositionPolicy,
    add: TrainableAdd,
) -> Tensor:
    """The batch's loss with the trainable alpha * v added at the policy's training positions."""
    device = next(model.parameters()).device
    instructions = [t.instruction for t in chunk]
    responses = [t.concept_response for t in chunk]
    if config.loss == "simpo":
        instructions = instructions * 2
        responses = responses + [str(t.neutral_response) for t in chunk]  # winners first, then losers
    batch = encode_batch(tokenizer, instructions, responses, max_response_tokens=config.max_response_tokens)
    check_context(model, batch.input_ids.shape[1])
    with steer(model, Intervention(config.layer, add, ExplicitMask(training_mask(policy, batch)))):
        logits = _forward(model, batch, device)
    labels = batch.labels.to(device)
    if config.loss == "lang":
        return lang_loss(logits, labels)
    with torch.no_grad():
        reference, _ = sequence_logps(_forward(model, batch, device), labels)
    policy_logps, lengths = sequence_logps(logits, labels)
    half = len(chunk)
    return scaled_simpo_loss(
        policy_logps[:half], policy_logps[half:], reference[:half], reference[half:], lengths[:half], lengths[half:]
    )


def train_vector(
    model: Any,
    tokenizer: Any,
    triples: Sequence[Triple],
    config: ProsvConfig,
    *,
    log: Log | None = None,
    progress: bool = True,
) -> ProsvArtifact:
    """Train (alpha, v) on ``triples`` with the model frozen; hooks and grad flags are restored on every exit."""
    layer = check_layer(model, config.layer)
    if not triples:
        raise DataError("PrOSV needs training examples. Fix: load_triples(...) or build_triples(...) first.")
    if config.loss == "simpo" and any(t.neutral_response is None for t in triples):
        raise DataError(
            "The simpo loss needs a neutral response per example. Fix: train on data that has them (the "
            "release's contrast data, or neutral_response fields), or fill_neutral(model, ...) first (neutral=model)."
        )
    width = hidden_size(model)
    hyper = config.hyper(width, num_layers(model))
    generator = torch.Generator().manual_seed(config.seed)
    params = ProsvParameters(width, hyper, generator).to(next(model.parameters()).device)
    batch_size = hyper.batch_size
    total = hyper.epochs * math.ceil(len(triples) / batch_size)
    optimizer, scheduler = make_optimizer(params, hyper, total)
    add = TrainableAdd(params.vector, params.factor)
    policy = parse_positions(config.positions)
    losses: list[float] = []
    if progress:
        tqdm.write(f"PrOSV training values: {hyper.source}")
    with frozen(model):
        bar = tqdm(total=total, desc=f"PrOSV {config.loss} {config.positions}", disable=not progress)
        for _ in range(hyper.epochs):
            order = torch.randperm(len(triples), generator=generator).tolist()
            for start in range(0, len(order), batch_size):
                chunk = [triples[i] for i in order[start : start + batch_size]]
                with torch.enable_grad():
                    loss = _step_loss(model, tokenizer, chunk, config, policy, add)
                    optimizer.zero_grad()
                    loss.backward()
                torch.nn.utils.clip_grad_norm_([params.vector], config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                bar.update()
                factor = float(params.factor.detach())
                bar.set_postfix(loss=f"{losses[-1]:.3f}", factor=f"{factor:.1f}")
                if log is not None:
                    log({"loss": losses[-1], "factor": factor, "v_norm": float(params.vector.detach().norm())})
        bar.close()
    steps_per_epoch = math.ceil(len(triples) / batch_size)
    saved = config.training_settings()
    return ProsvArtifact(
        direction=params.vector.detach().cpu(),
        factor=float(params.factor.detach()),
        layer=layer,
        positions=config.positions,
        concept=config.concept,
        model_id=model_id(model),
        config={**saved, **hyper.record(), "width": width},
        metrics={
            "loss_first_step": losses[0],
            "loss_last_epoch": sum(losses[-steps_per_epoch:]) / steps_per_epoch,
            "factor": float(params.factor.detach()),
            "direction_norm": float(params.vector.detach().norm()),
            "n_train": len(triples),
            "steps": total,
        },
    )

"""PSR training: probes trained through the frozen model against the prompted activations (mse) or the
prompted responses' likelihood (ll).

Objectives (run on x y' with the probes on, strength = the triplet's label, 1.0 without an attribute judge):
  mse: sum over layers l >= first steered layer of ||A_l(x y'; probes) - A_l(x' y')||^2 over the span,
       normalised by its value on the dev triplets before training (single-layer MSE thus covers the
       steered layer and every later one; with probes at every layer each probe learns the local
       difference left by the earlier ones).
  ll:  -log p(y' | x) under the probes.
  regulariser reg_weight * max(0, 1 - sum_i lambda_i) over the steered tokens, per sequence and layer
  (default 0.1, the paper's persona setting; 0 turns it off, as in its IFEval runs).
The span (``config.token_span``, see ``data``): R or QR; the artifact steers the same tokens at inference.
AdamW (lr 1e-3, weight decay 1e-6), linear decay to 0, no warmup; 15 epochs (mse) / 7 (ll) by default.
Probe init: w, b like nn.Linear(d, 1), z its own vector, all uniform(+-1/sqrt(d)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from saesteer.engines.frozen import frozen
from saesteer.engines.protocol import Log
from saesteer.engines.psr.artifact import SPAN_POSITIONS, PSRArtifact
from saesteer.engines.psr.config import PSRConfig
from saesteer.engines.psr.data import Triplet, pair_batch
from saesteer.engines.psr.metrics import probe_metrics
from saesteer.engines.psr.probes import ProbeParams, run_probes
from saesteer.errors import DataError, VectorError
from saesteer.models.layers import check_context, check_layer, hidden_size, num_layers
from saesteer.models.loading import model_id
from saesteer.runtime.capture import capture


def _targets(
    model: nn.Module, tokenizer: Any, triplets: Sequence[Triplet], layers: list[int], config: PSRConfig
) -> list[Tensor]:
    """Prompted activations A_l(x' y') over the span, one (n_span, len(layers), d) tensor per triplet."""
    found: list[Tensor] = []
    batch_size = config.batch_size
    for start in range(0, len(triplets), batch_size):
        batch = pair_batch(tokenizer, triplets[start : start + batch_size], steered=True, span=config.token_span)
        check_context(model, batch.inputs["input_ids"].shape[1])
        hidden = capture(model, batch.inputs, layers)
        stacked = torch.stack([hidden[layer] for layer in layers], dim=2).float()  # (B, T, L, d)
        found.extend(stacked[row][batch.span[row]] for row in range(stacked.shape[0]))
    return found


def _loss(
    model: nn.Module,
    tokenizer: Any,
    params: ProbeParams,
    chunk: Sequence[Triplet],
    targets: Sequence[Tensor],
    loss_layers: list[int],
    config: PSRConfig,
) -> tuple[Tensor, Tensor]:
    """(objective, regulariser) of one batch."""
    batch = pair_batch(tokenizer, chunk, steered=False, span=config.token_span)
    check_context(model, batch.inputs["input_ids"].shape[1])
    trace, logits = run_probes(model, params, batch, loss_layers, logits=config.objective == "ll")
    if logits is not None:
        labels = batch.labels
        objective = nn.functional.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
    else:
        predicted = torch.stack([trace.out[layer][batch.span] for layer in loss_layers], dim=1)
        objective = (predicted.float() - torch.cat(list(targets))).pow(2).sum(dim=(1, 2)).mean()
    sums = torch.stack([(trace.gate[layer] * batch.steer).sum(dim=1) for layer in params.layers])  # (P, B)
    return objective, torch.relu(1 - sums).mean()


def split_triplets(triplets: Sequence[Triplet], fraction: float, seed: int) -> tuple[list[Triplet], list[Triplet]]:
    order = torch.randperm(len(triplets), generator=torch.Generator().manual_seed(seed)).tolist()
    n_dev = round(len(triplets) * fraction) if len(triplets) > 1 else 0
    n_dev = min(max(n_dev, 1 if fraction > 0 else 0), len(triplets) - 1)
    return [triplets[i] for i in order[n_dev:]], [triplets[i] for i in order[:n_dev]]


@dataclass
class PSRResult:
    artifact: PSRArtifact
    train: list[Triplet]
    dev: list[Triplet]
    history: list[dict[str, float]]


def train_probes(
    model: nn.Module,
    tokenizer: Any,
    triplets: Sequence[Triplet],
    config: PSRConfig,
    *,
    dev: Sequence[Triplet] | None = None,
    log: Log | None = None,
    progress: bool = True,
) -> PSRResult:
    """Train PSR probes on ``triplets`` (``dev``: held out for normalisation and metrics; default a
    ``config.dev_fraction`` split). Metrics (dev): R^2 / cosine of the predicted vs true prompt-induced
    difference at each steered layer, the zero-gate fraction, and a constant-vector baseline's R^2."""
    wanted = range(num_layers(model)) if config.layers == "all" else config.layers
    layers = sorted({check_layer(model, layer) for layer in wanted})
    if len(triplets) < 2 and dev is None:
        raise DataError(f"PSR needs at least 2 triplets (got {len(triplets)}). Fix: use more base prompts.")
    train, held = (
        (list(triplets), list(dev)) if dev is not None else split_triplets(triplets, config.dev_fraction, config.seed)
    )
    loss_layers = list(range(layers[0], num_layers(model)))
    mse = config.objective == "mse"
    torch.manual_seed(config.seed)
    params = ProbeParams(layers, hidden_size(model), torch.Generator().manual_seed(config.seed))
    params.to(next(model.parameters()).device)
    train_targets = _targets(model, tokenizer, train, loss_layers, config) if mse else [torch.empty(0)] * len(train)
    dev_targets = _targets(model, tokenizer, held, loss_layers, config) if mse else [torch.empty(0)] * len(held)
    initial = _dev_loss(model, tokenizer, params, held, dev_targets, loss_layers, config) if held else float("nan")
    scale = initial if mse and initial > 0 else 1.0
    steps = config.n_epochs * math.ceil(len(train) / config.batch_size)
    optimizer = torch.optim.AdamW(params.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / steps))
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = [{"epoch": 0.0, "dev_loss": initial / scale}] if held else []
    bar = tqdm(
        total=steps, desc=f"PSR {config.objective} L{layers[0]}{'+' if len(layers) > 1 else ''}", disable=not progress
    )
    with frozen(model):
        for epoch in range(config.n_epochs):
            order = torch.randperm(len(train), generator=generator).tolist()
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                index = order[start : start + config.batch_size]
                objective, reg = _loss(
                    model,
                    tokenizer,
                    params,
                    [train[i] for i in index],
                    [train_targets[i] for i in index],
                    loss_layers,
                    config,
                )
                loss = objective / scale + config.reg_weight * reg
                if not torch.isfinite(loss):
                    raise VectorError(
                        "PSR training loss became NaN/inf. Fix: lower lr or check the model's activations."
                    )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total += float(loss.detach()) * len(index)
                bar.update(1)
            row = {"epoch": float(epoch + 1), "train_loss": total / len(train)}
            if held:
                row["dev_loss"] = _dev_loss(model, tokenizer, params, held, dev_targets, loss_layers, config) / scale
            history.append(row)
            bar.set_postfix({k: round(v, 4) for k, v in row.items() if k != "epoch"})
            if log is not None:
                log(row)
    bar.close()
    metrics: dict[str, Any] = {"n_train": len(train), "n_dev": len(held), "loss_scale": scale, **history[-1]}
    if held:
        size, span = config.batch_size, config.token_span
        _, constant = probe_metrics(model, tokenizer, params, train, batch_size=size, span=span)
        found, _ = probe_metrics(model, tokenizer, params, held, constant=constant, batch_size=size, span=span)
        metrics.update(found)
    artifact = params.artifact(
        positions=SPAN_POSITIONS[config.token_span],
        model_id=model_id(model),
        config={**config.to_dict(), "layers": layers, "width": hidden_size(model)},
        metrics=metrics,
    )
    return PSRResult(artifact, train, held, history)


def _dev_loss(
    model: nn.Module,
    tokenizer: Any,
    params: ProbeParams,
    held: Sequence[Triplet],
    targets: Sequence[Tensor],
    loss_layers: list[int],
    config: PSRConfig,
) -> float:
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(held), config.batch_size):
            chunk = held[start : start + config.batch_size]
            objective, _ = _loss(
                model, tokenizer, params, chunk, targets[start : start + config.batch_size], loss_layers, config
            )
            total += float(objective) * len(chunk)
    return total / len(held)

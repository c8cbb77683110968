"""How well PSR probes reproduce the prompt-induced difference: R^2, cosine, zero gates, a constant baseline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from saesteer.engines.psr.artifact import PSRArtifact
from saesteer.engines.psr.config import Span
from saesteer.engines.psr.data import Triplet, pair_batch
from saesteer.engines.psr.probes import ProbeParams, run_probes
from saesteer.models.layers import check_context
from saesteer.runtime.capture import capture


def probe_metrics(
    model: nn.Module,
    tokenizer: Any,
    probes: PSRArtifact | ProbeParams,
    triplets: Sequence[Triplet],
    *,
    constant: dict[int, Tensor] | None = None,
    batch_size: int = 8,
    span: Span = "R",
) -> tuple[dict[str, float], dict[int, Tensor]]:
    """How well the probes (strength = triplet label, i.e. as trained) reproduce the prompt-induced
    difference Delta_l = A_l(x' y') - h_l over the span, where h_l is the block output of x y' before
    the layer-l probe (for S-PSR the unsteered run: cumulative Delta; with earlier probes on: local).

    Returns (metrics, mean true Delta per layer). Metrics, pooled over layers and per layer (``_l{L}``):
    r2 (1 - SSE / total variance of Delta over tokens), cosine (mean per token, 0 where the gate is 0),
    cosine_active (tokens with a non-zero gate), zero_gate_fraction, and with ``constant`` {layer: v}
    const_r2: the R^2 of predicting every token's Delta by the constant v (e.g. the train-set mean)."""
    params = probes if isinstance(probes, ProbeParams) else ProbeParams.from_artifact(probes)
    layers = params.layers
    keys = ("sse", "sst", "const_sse", "cos", "cos_active", "active", "tokens")
    sums = {layer: dict.fromkeys(keys, 0.0) for layer in layers}
    delta_sum: dict[int, Tensor] = {}
    deltas: dict[int, list[Tensor]] = {layer: [] for layer in layers}
    for start in range(0, len(triplets), batch_size):
        chunk = triplets[start : start + batch_size]
        prompted = pair_batch(tokenizer, chunk, steered=True, span=span)
        batch = pair_batch(tokenizer, chunk, steered=False, span=span)
        check_context(model, max(prompted.inputs["input_ids"].shape[1], batch.inputs["input_ids"].shape[1]))
        with torch.no_grad():
            targets = capture(model, prompted.inputs, layers)
            trace, _ = run_probes(model, params, batch, layers, logits=False)
        strength = batch.strength[:, None].expand_as(batch.span)[batch.span]
        for layer in layers:
            _, _, z = params.probe(layer)
            true = (targets[layer][prompted.span] - trace.pre[layer][batch.span]).double()
            gate = trace.gate[layer][batch.span].double() * strength.double()
            predicted = gate[:, None] * z.detach().double()
            cosine = nn.functional.cosine_similarity(predicted, true, dim=-1)
            found = sums[layer]
            found["sse"] += float((predicted - true).pow(2).sum())
            found["cos"] += float(cosine.sum())
            found["cos_active"] += float(cosine[gate > 0].sum())
            found["active"] += float((gate > 0).sum())
            found["tokens"] += true.shape[0]
            deltas[layer].append(true)
            if constant is not None:
                found["const_sse"] += float((constant[layer].double() - true).pow(2).sum())
    metrics: dict[str, float] = {}
    for layer in layers:
        true = torch.cat(deltas[layer])
        delta_sum[layer] = true.mean(dim=0).float()
        sums[layer]["sst"] = float((true - true.mean(dim=0)).pow(2).sum())
        metrics.update({f"{name}_l{layer}": value for name, value in _summary([sums[layer]], constant).items()})
    metrics.update(_summary(list(sums.values()), constant))
    return metrics, delta_sum


def _summary(parts: list[dict[str, float]], constant: dict[int, Tensor] | None) -> dict[str, float]:
    total = {key: sum(p[key] for p in parts) for key in parts[0]}
    found = {
        "r2": 1 - total["sse"] / total["sst"] if total["sst"] > 0 else float("nan"),
        "cosine": total["cos"] / total["tokens"],
        "cosine_active": total["cos_active"] / total["active"] if total["active"] else float("nan"),
        "zero_gate_fraction": 1 - total["active"] / total["tokens"],
    }
    if constant is not None:
        found["const_r2"] = 1 - total["const_sse"] / total["sst"] if total["sst"] > 0 else float("nan")
    return found

"""PSR, Prompt Steering Replacement (Heyman & Vandeputte, arXiv 2605.03907): a token-wise ReLU probe
distilled from prompting.

Per steered layer l: lambda_l(h) = ReLU(w_l.h + b_l); h' = h + alpha * lambda_l(h) * z_l, with w, b, z
trained (z its own vector, Kaiming-uniform init, bound 1/sqrt(d)). S-PSR steers one layer, A-PSR
several (all) layers trained jointly in one backward pass. Training data are triplets (x, x', y')
(``psr_data``); the steered span is the last prompt token + the response, at training and inference
(position policy ``prompt_and_generated_last``).

Objectives (run on x y' with the probes on, alpha = the triplet's label, 1.0 without an attribute judge):
  mse: sum over layers l >= first steered layer of ||A_l(x y'; probes) - A_l(x' y')||^2 over the span,
       normalised by its value on the dev triplets before training (single-layer MSE thus covers the
       steered layer and every later one; with probes at every layer each probe learns the local
       difference left by the earlier ones).
  ll:  -log p(y' | x) under the probes.
  optional regulariser reg_weight * max(0, 1 - sum_i lambda_i) per sequence and layer.
AdamW (lr 1e-3, weight decay 1e-6), linear decay to 0, no warmup; 15 epochs (mse) / 7 (ll) by default.

Inference: the artifact's ``alpha`` is the calibrated strength (binary search to a coherence target
with a pluggable judge; offline default judge: mean token log-likelihood of the output under the
unsteered model, a proxy) or a fixed value. ``artifact.interventions(alpha=m)`` steers with
m * artifact.alpha: m = 1.0 is "as calibrated"; m may be one value per batch row.

    >>> triplets = psr_data.build_triplets(model, tok, prompts, "Answer in a very happy tone.")
    >>> result = psr.fit(model, tok, triplets, PSRConfig(layers=[15]))
    >>> artifact = psr.calibrate(model, tok, result.artifact, held_out_prompts, target=-2.0).artifact
    >>> with steer(model, artifact, alpha=[0.5, 1.0]): model.generate(...)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from saesteer.engines.frozen import frozen
from saesteer.engines.psr_data import Judge, PairBatch, Triplet, pair_batch
from saesteer.errors import ConfigError, DataError, StoreError, VectorError
from saesteer.models.layers import check_context, check_layer, decoder_layers, hidden_size, num_layers
from saesteer.models.loading import model_id
from saesteer.paths import cache_dir
from saesteer.runtime.capture import capture
from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.probe_operator import GatedProbe, probe_gate

Objective = Literal["mse", "ll"]
POSITIONS = "prompt_and_generated_last"
DEFAULT_EPOCHS = {"mse": 15, "ll": 7}


@dataclass
class PSRConfig:
    """What to train: ``layers`` (one = S-PSR, several = A-PSR), objective and optimiser settings."""

    layers: list[int]
    objective: Objective = "mse"
    epochs: int | None = None  # None: 15 (mse) or 7 (ll)
    lr: float = 1e-3
    weight_decay: float = 1e-6
    batch_size: int = 4
    reg_weight: float = 0.0
    dev_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in ("mse", "ll"):
            raise ConfigError(f"Unknown PSR objective {self.objective!r}. Fix: use 'mse' or 'll'.")
        if not self.layers:
            raise ConfigError("PSR needs at least one layer. Fix: pass layers=[L] (S-PSR) or all layers (A-PSR).")
        if self.batch_size < 1 or (self.epochs is not None and self.epochs < 1) or self.lr <= 0:
            raise ConfigError("PSR needs batch_size >= 1, epochs >= 1 and lr > 0. Fix: correct the option.")
        if not 0.0 <= self.dev_fraction < 1.0 or self.reg_weight < 0:
            raise ConfigError("PSR needs 0 <= dev_fraction < 1 and reg_weight >= 0. Fix: correct the option.")

    @property
    def n_epochs(self) -> int:
        return self.epochs or DEFAULT_EPOCHS[self.objective]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "epochs": self.n_epochs}


@dataclass
class PSRArtifact:
    """Trained probes {layer: (w, b, z)} and the calibrated strength ``alpha`` (see module docstring)."""

    probes: dict[int, tuple[Tensor, Tensor, Tensor]]
    alpha: float = 1.0
    hook_point: HookPoint = "resid_post"
    positions: str = POSITIONS
    model_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.probes:
            raise VectorError("A PSR artifact needs at least one probe. Fix: train it with psr.fit.")
        self.probes = {int(k): v for k, v in sorted(self.probes.items())}
        for layer, (w, b, z) in self.probes.items():
            GatedProbe(w, b, z)  # validates shapes and finiteness
            if w.shape[-1] != self.width:
                raise VectorError(f"PSR probe of layer {layer} has width {w.shape[-1]}, others {self.width}.")
        if not math.isfinite(self.alpha):
            raise VectorError(f"PSR alpha is {self.alpha}. Fix: recalibrate or pass a finite alpha.")

    @property
    def layers(self) -> list[int]:
        return list(self.probes)

    @property
    def width(self) -> int:
        return int(next(iter(self.probes.values()))[0].shape[-1])

    @property
    def variant(self) -> str:
        return "S" if len(self.probes) == 1 else "A"

    def interventions(
        self, alpha: Any = 1.0, positions: Any = None, layer: int | None = None, hook_point: HookPoint | None = None
    ) -> list[Intervention]:
        """One GatedProbe per layer with strength ``alpha * self.alpha`` (alpha: multiplier, scalar or per row)."""
        if layer is not None and [layer] != self.layers:
            raise ConfigError(
                f"This PSR artifact steers layers {self.layers}; its probes cannot move to layer {layer}. "
                "Fix: do not pass layer= (or pass its own layer)."
            )
        strength = torch.as_tensor(alpha, dtype=torch.float64) * self.alpha
        return [
            Intervention(
                index, GatedProbe(w, b, z, strength), positions or self.positions, hook_point or self.hook_point
            )
            for index, (w, b, z) in self.probes.items()
        ]


class ProbeParams(nn.Module):
    """Trainable (w, b, z) for each steered layer; w, b like nn.Linear(d, 1), z uniform(+-1/sqrt(d))."""

    def __init__(self, layers: Sequence[int], width: int, generator: torch.Generator) -> None:
        super().__init__()
        self.layers = list(layers)
        bound = 1.0 / math.sqrt(width)

        def uniform(*shape: int) -> nn.Parameter:
            return nn.Parameter((torch.rand(*shape, generator=generator) * 2 - 1) * bound)

        self.w, self.b, self.z = uniform(len(layers), width), uniform(len(layers)), uniform(len(layers), width)

    def probe(self, layer: int) -> tuple[Tensor, Tensor, Tensor]:
        index = self.layers.index(layer)
        return self.w[index], self.b[index], self.z[index]

    def artifact(self, **kwargs: Any) -> PSRArtifact:
        probes = {}
        for layer in self.layers:
            w, b, z = (t.detach().clone() for t in self.probe(layer))
            probes[layer] = (w, b, z)
        return PSRArtifact(probes, **kwargs)

    @classmethod
    def from_artifact(cls, artifact: PSRArtifact) -> ProbeParams:
        params = cls(artifact.layers, artifact.width, torch.Generator())
        with torch.no_grad():
            for index, (w, b, z) in enumerate(artifact.probes.values()):
                params.w[index], params.b[index], params.z[index] = w, b, z
        return params.requires_grad_(False)


@dataclass
class Trace:
    """What one forward pass with probes saw: block outputs (after edits) and, at probe layers, the
    pre-edit hidden state and the gate."""

    out: dict[int, Tensor] = field(default_factory=dict)
    pre: dict[int, Tensor] = field(default_factory=dict)
    gate: dict[int, Tensor] = field(default_factory=dict)


class _Stop(Exception):
    """Raised after the last layer a loss needs, to skip the rest of the model."""


def _hook(index: int, probe: tuple[Tensor, Tensor, Tensor] | None, batch: PairBatch, trace: Trace, stop: bool) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        if probe is not None:
            w, b, z = probe
            gate = probe_gate(hidden, w, b)
            trace.pre[index], trace.gate[index] = hidden, gate
            strength = batch.strength.to(hidden.dtype)[:, None, None] * batch.span[..., None]
            hidden = hidden + strength * gate[..., None] * z
        trace.out[index] = hidden
        if stop:
            raise _Stop
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    return hook


def run_probes(
    model: nn.Module, params: ProbeParams, batch: PairBatch, read: Sequence[int], logits: bool
) -> tuple[Trace, Tensor | None]:
    """Differentiable forward of x y' with the probes editing the span; hooks removed on every exit."""
    blocks = decoder_layers(model)
    trace = Trace()
    wanted = sorted(set(read) | set(params.layers))
    handles = []
    try:
        for index in wanted:
            probe = params.probe(index) if index in params.layers else None
            stop = not logits and index == wanted[-1]
            handles.append(blocks[index].register_forward_hook(_hook(index, probe, batch, trace, stop)))
        with suppress(_Stop):
            out = model(**batch.inputs, use_cache=False)
            return trace, out.logits
        return trace, None
    finally:
        for handle in handles:
            handle.remove()


def _targets(
    model: nn.Module, tokenizer: Any, triplets: Sequence[Triplet], layers: list[int], batch_size: int
) -> list[Tensor]:
    """Prompted activations A_l(x' y') over the span, one (n_span, len(layers), d) tensor per triplet."""
    found: list[Tensor] = []
    for start in range(0, len(triplets), batch_size):
        batch = pair_batch(tokenizer, triplets[start : start + batch_size], steered=True)
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
    batch = pair_batch(tokenizer, chunk, steered=False)
    check_context(model, batch.inputs["input_ids"].shape[1])
    trace, logits = run_probes(model, params, batch, loss_layers, logits=config.objective == "ll")
    if logits is not None:
        labels = batch.labels
        objective = nn.functional.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
    else:
        predicted = torch.stack([trace.out[layer][batch.span] for layer in loss_layers], dim=1)
        objective = (predicted.float() - torch.cat(list(targets))).pow(2).sum(dim=(1, 2)).mean()
    sums = torch.stack([(trace.gate[layer] * batch.span).sum(dim=1) for layer in params.layers])  # (P, B)
    return objective, torch.relu(1 - sums).mean()


def _split(triplets: Sequence[Triplet], fraction: float, seed: int) -> tuple[list[Triplet], list[Triplet]]:
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


def fit(
    model: nn.Module,
    tokenizer: Any,
    triplets: Sequence[Triplet],
    config: PSRConfig,
    *,
    dev: Sequence[Triplet] | None = None,
    log: Callable[[dict[str, float]], None] | None = None,
    progress: bool = True,
) -> PSRResult:
    """Train PSR probes on ``triplets`` (``dev``: held out for normalisation and metrics; default a
    ``config.dev_fraction`` split). Metrics (dev): R^2 / cosine of the predicted vs true prompt-induced
    difference at each steered layer, the zero-gate fraction, and a constant-vector baseline's R^2."""
    layers = sorted({check_layer(model, layer) for layer in config.layers})
    if len(triplets) < 2 and dev is None:
        raise DataError(f"PSR needs at least 2 triplets (got {len(triplets)}). Fix: use more base prompts.")
    train, held = (list(triplets), list(dev)) if dev is not None else _split(triplets, config.dev_fraction, config.seed)
    loss_layers = list(range(layers[0], num_layers(model)))
    mse = config.objective == "mse"
    torch.manual_seed(config.seed)
    params = ProbeParams(layers, hidden_size(model), torch.Generator().manual_seed(config.seed))
    params.to(next(model.parameters()).device)
    train_targets = (
        _targets(model, tokenizer, train, loss_layers, config.batch_size) if mse else [torch.empty(0)] * len(train)
    )
    dev_targets = (
        _targets(model, tokenizer, held, loss_layers, config.batch_size) if mse else [torch.empty(0)] * len(held)
    )
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
        _, constant = probe_metrics(model, tokenizer, params, train, batch_size=config.batch_size)
        found, _ = probe_metrics(model, tokenizer, params, held, constant=constant, batch_size=config.batch_size)
        metrics.update(found)
    artifact = params.artifact(
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


def probe_metrics(
    model: nn.Module,
    tokenizer: Any,
    probes: PSRArtifact | ProbeParams,
    triplets: Sequence[Triplet],
    *,
    constant: dict[int, Tensor] | None = None,
    batch_size: int = 8,
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
        prompted = pair_batch(tokenizer, chunk, steered=True)
        batch = pair_batch(tokenizer, chunk, steered=False)
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


def save(store: Any, name: str, artifact: PSRArtifact, *, data_hash: str = "", model_fingerprint: str = "") -> Any:
    """Keep the probes as a ``probe`` record (method psr); alpha, layers and width go in its config."""
    tensors = {}
    for layer, (w, b, z) in artifact.probes.items():
        tensors.update({f"{layer}.w": w.float(), f"{layer}.b": b.reshape(1).float(), f"{layer}.z": z.float()})
    config = {
        **artifact.config,
        "alpha": artifact.alpha,
        "layers": artifact.layers,
        "width": artifact.width,
        "positions": artifact.positions,
        "variant": artifact.variant,
    }
    return store.put(
        "probe",
        name,
        tensors,
        model_id=artifact.model_id,
        model_fingerprint=model_fingerprint,
        layer=artifact.layers[0] if artifact.variant == "S" else None,
        hook_point=artifact.hook_point,
        method="psr",
        config=config,
        data_hash=data_hash,
        metrics=artifact.metrics,
    )


def load(store: Any, name: str, model: nn.Module | None = None) -> PSRArtifact:
    """A stored PSR artifact; with ``model``, check its layers and width fit that model."""
    record = store.get(name, kind="probe")
    if record.method != "psr":
        raise ConfigError(f"{name!r} is a {record.method} probe, not PSR. Fix: pick a PSR record name.")
    tensors = store.tensors(record)
    config = dict(record.config)
    try:
        probes = {
            int(layer): (tensors[f"{layer}.w"], tensors[f"{layer}.b"], tensors[f"{layer}.z"])
            for layer in config["layers"]
        }
    except KeyError as exc:
        raise StoreError(f"PSR record {name!r} lacks {exc}. Fix: retrain it and save with psr.save.") from exc
    artifact = PSRArtifact(
        probes,
        alpha=float(config.get("alpha", 1.0)),
        hook_point=record.hook_point or "resid_post",
        positions=str(config.get("positions", POSITIONS)),
        model_id=record.model_id,
        config=config,
        metrics=record.metrics,
    )
    if model is not None:
        if artifact.width != hidden_size(model):
            raise VectorError(
                f"PSR record {name!r} has width {artifact.width} but the model's hidden size is {hidden_size(model)}. "
                f"Fix: load it with the model it was trained on ({record.model_id or 'see the record'})."
            )
        for layer in artifact.layers:
            check_layer(model, layer)
    return artifact


@contextmanager
def wandb_logger(
    enabled: bool, config: dict[str, Any], directory: str | os.PathLike[str] | None = None
) -> Iterator[Callable[[dict[str, float]], None] | None]:
    """A wandb run's ``log`` (offline unless WANDB_MODE says otherwise; files under ``directory`` or
    the saesteer cache), or None when disabled; the run is finished on every exit path."""
    from saesteer.tracking import wandb_run

    project = "saesteer" if enabled else None
    with wandb_run(project, config, directory=directory or cache_dir("wandb"), job_type="psr") as run:
        yield None if run is None else run.log


def train(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    instruction: str,
    config: PSRConfig,
    *,
    max_new_tokens: int = 48,
    sample: bool = False,
    alpha: float | None = None,
    coherence_target: float | Literal["prompt"] = "prompt",
    judge: Judge | None = None,
    wandb: bool = True,
    wandb_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> tuple[PSRResult, Calibration | None]:
    """Prompts -> triplets -> fit -> alpha (fixed ``alpha``, else binary search on the dev prompts to
    ``coherence_target``: a judge score, or "prompt" = the prompted responses' own coherence, TA@Cp)."""
    from saesteer.engines.psr_data import build_triplets

    triplets = build_triplets(
        model,
        tokenizer,
        prompts,
        instruction,
        max_new_tokens=max_new_tokens,
        sample=sample,
        seed=config.seed,
        batch_size=max(config.batch_size, 8),
        progress=progress,
    )
    train_set, dev = _split(triplets, config.dev_fraction, config.seed)
    settings = {**config.to_dict(), "instruction": instruction, "n_prompts": len(prompts), "sample": sample}
    with wandb_logger(wandb, settings, wandb_dir) as log:
        result = fit(model, tokenizer, train_set, config, dev=dev, log=log, progress=progress)
        result.artifact.config.update(
            {"instruction": instruction, "n_prompts": len(prompts), "max_new_tokens": max_new_tokens, "sample": sample}
        )
        calibration = None
        if alpha is not None:
            result.artifact = replace(result.artifact, alpha=float(alpha))
        elif dev:
            judge = judge or perplexity_judge(model, tokenizer)
            target = prompt_coherence(dev, judge) if coherence_target == "prompt" else float(coherence_target)
            calibration = calibrate(
                model,
                tokenizer,
                result.artifact,
                [t.prompt for t in dev],
                target=target,
                judge=judge,
                max_new_tokens=max_new_tokens,
                progress=progress,
            )
            result.artifact = calibration.artifact
        else:
            raise ConfigError("Calibrating alpha needs dev prompts. Fix: set dev_fraction > 0 or pass alpha=.")
        if log is not None:
            log(
                {k: v for k, v in result.artifact.metrics.items() if isinstance(v, (int, float))}
                | {"alpha": result.artifact.alpha}
            )
    return result, calibration

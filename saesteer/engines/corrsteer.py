"""CorrSteer (arXiv 2508.12535): SAE features whose generation-time activation correlates with reward.

Harvest: greedy generation on the task's train split; at every position that produces a generated
token (the last prompt token, then each generated token before EOS) the layer's residual stream is
encoded by its SAE and pooled per sample (max, or mean); FeatureStats accumulates float64 Pearson sums
against the sample's reward and the coefficient (mean pooled activation over rewarded samples, zeros
included). Selection keeps positively correlated features only: top-1 per layer; variant S = the single
best over layers, A = top-1 of every layer, P = layers whose feature alone beats the unsteered model
on the validation split. Steering adds s * sum_i c_i * W_dec[i] at the same positions.

The SAE's own hook point is used for both reading and steering (the paper's code reads block inputs
with SAEs trained on block outputs; pass ``hook_point`` to reproduce that).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from saesteer.data.chat import chat_prompt, encode
from saesteer.distributed import gather, world
from saesteer.errors import ConfigError, DataError
from saesteer.models.layers import check_context, check_layer, decoder_layers
from saesteer.models.loading import model_id
from saesteer.runtime.capture import add_reader
from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.operators import AddVector
from saesteer.saes import check_sae_fits
from saesteer.stats import FeatureStats
from saesteer.tasks.base import Sample, Split, Task

Pool = Literal["max", "mean"]
Variant = Literal["S", "A", "P"]
POSITIONS = "prompt_and_generated_last"


@dataclass
class Generation:
    """One sample's greedy generation, its reward, and its strongest pooled latents per layer."""

    id: str
    generation: str
    reward: float
    top_latents: dict[int, list[tuple[int, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class SelectedFeature:
    layer: int
    feature: int
    r: float
    coefficient: float


@dataclass
class CorrSteerArtifact:
    """Selected features and their decoder rows; ``interventions`` adds s * sum c_i * W_dec[i] per layer."""

    features: list[SelectedFeature]
    decoder_rows: dict[tuple[int, int], Tensor]
    hook_point: HookPoint = "resid_post"
    variant: Variant = "A"
    model_id: str = ""

    def vectors(self) -> dict[int, Tensor]:
        sums: dict[int, Tensor] = {}
        for f in self.features:
            row = f.coefficient * self.decoder_rows[(f.layer, f.feature)].double()
            sums[f.layer] = sums.get(f.layer, torch.zeros_like(row)) + row
        return {layer: v.float() for layer, v in sums.items()}

    def interventions(
        self, alpha: Any = 1.0, positions: Any = None, layer: int | None = None, hook_point: HookPoint | None = None
    ) -> list[Intervention]:
        if layer is not None:
            raise ConfigError("A CorrSteer artifact steers its own layers. Fix: do not pass layer=.")
        return [
            Intervention(index, AddVector(v, alpha), positions or POSITIONS, hook_point or self.hook_point)
            for index, v in sorted(self.vectors().items())
        ]

    def restricted(self, layers: Sequence[int]) -> CorrSteerArtifact:
        keep = [f for f in self.features if f.layer in set(layers)]
        return CorrSteerArtifact(keep, self.decoder_rows, self.hook_point, self.variant, self.model_id)


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


def select(stats: FeatureStats, variant: Variant = "A", top_k: int = 20) -> tuple[list[SelectedFeature], dict]:
    """Positive-correlation features: top-1 per layer (A, and P's candidates) or the global best (S)."""
    if variant not in ("S", "A", "P"):
        raise ConfigError(f"Unknown variant {variant!r}. Fix: use S, A or P.")
    ranked = stats.top_features(top_k, positive_only=True)
    coefficients = stats.coefficients() if stats.n_pos else torch.zeros_like(stats.sum_x)
    best = []
    for index, layer in enumerate(stats.layers):
        if ranked[layer]:
            feature, r = ranked[layer][0]
            best.append(SelectedFeature(layer, feature, r, float(coefficients[index, feature])))
    if not best:
        raise DataError("No feature correlates positively with the reward. Fix: use a task whose reward varies.")
    chosen = [max(best, key=lambda f: f.r)] if variant == "S" else best
    return chosen, {layer: ranked[layer] for layer in stats.layers}


def evaluate(
    model: Any, tokenizer: Any, task: Task, samples: Sequence[Sample], steering: Any = None, *, batch_size: int = 8
) -> list[Generation]:
    """Generations and rewards on ``samples``, optionally steered (the artifact's own positions)."""
    records: list[Generation] = []
    for start in range(0, len(samples), batch_size):
        chunk = list(samples[start : start + batch_size])
        texts, _ = generate_and_read(
            model, tokenizer, task, chunk, {}, hook_point="resid_post", pool="max", steering=steering
        )
        records.extend(Generation(s.id, t, task.reward(s, t)) for s, t in zip(chunk, texts, strict=True))
    return records


def side_effect_ratio(baseline: Sequence[Generation], steered: Sequence[Generation]) -> float | None:
    """CorrSteer's SER: among samples whose steered output differs from the baseline's, the fraction whose
    reward got worse. None when nothing changed."""
    worse = better = 0
    for base, new in zip(baseline, steered, strict=True):
        if base.generation != new.generation:
            worse += new.reward < base.reward
            better += new.reward > base.reward
    return worse / (worse + better) if worse + better else None


@dataclass
class CorrSteerResult:
    artifact: CorrSteerArtifact
    harvest: Harvest
    ranked: dict[int, list[tuple[int, float]]]
    validation: dict[str, Any]


def fit(
    model: Any,
    tokenizer: Any,
    task: Task,
    saes: dict[int, Any],
    *,
    variant: Variant = "A",
    pool: Pool = "max",
    samples: int | None = None,
    hook_point: HookPoint | None = None,
    batch_size: int = 8,
    top_k: int = 20,
    val_limit: int = 200,
    progress: bool = True,
    harvested: Harvest | None = None,
) -> CorrSteerResult:
    """Harvest on the train split (or reuse ``harvested``), select features, and (variant P) prune
    layers on the val split."""
    point: HookPoint = hook_point or _sae_hook_point(saes)
    found = harvested or harvest(
        model,
        tokenizer,
        task,
        saes,
        limit=samples,
        pool=pool,
        hook_point=point,
        batch_size=batch_size,
        progress=progress,
    )
    chosen, ranked = select(found.stats, variant, top_k)
    rows = {(f.layer, f.feature): saes[f.layer].W_dec[f.feature].detach().float().clone() for f in chosen}
    artifact = CorrSteerArtifact(chosen, rows, point, variant, model_id(model))
    validation: dict[str, Any] = {}
    if variant == "P":
        val = task.samples("val")[:val_limit]
        base = _mean_reward(evaluate(model, tokenizer, task, val, batch_size=batch_size))
        per_layer = {
            f.layer: _mean_reward(
                evaluate(model, tokenizer, task, val, artifact.restricted([f.layer]), batch_size=batch_size)
            )
            for f in chosen
        }
        kept = [layer for layer, score in per_layer.items() if score > base]
        artifact = artifact.restricted(kept)
        validation = {"baseline": base, "per_layer": per_layer, "kept_layers": kept, "n_val": len(val)}
    return CorrSteerResult(artifact, found, ranked, validation)


def _mean_reward(records: Sequence[Generation]) -> float:
    return sum(r.reward for r in records) / max(1, len(records))


def _sae_hook_point(saes: dict[int, Any]) -> HookPoint:
    names = {str(getattr(sae.cfg.metadata, "hook_name", "") or "") for sae in saes.values()}
    return "resid_pre" if names and all(n.endswith("hook_resid_pre") for n in names) else "resid_post"


def examples(harvest: Harvest, ranked: dict[int, list[tuple[int, float]]], per_feature: int = 3) -> dict[str, list]:
    """For each ranked feature, the generations where its pooled activation was highest (from the
    strongest latents kept per sample during the harvest)."""
    found: dict[str, list] = {}
    for layer, features in ranked.items():
        for feature, _ in features:
            hits = [
                (value, record.generation, record.reward)
                for record in harvest.generations
                for latent, value in record.top_latents.get(layer, [])
                if latent == feature
            ]
            found[f"{layer}/{feature}"] = sorted(hits, reverse=True)[:per_feature]
    return found


def save(store: Any, name: str, result: CorrSteerResult, *, task: str, pool: str) -> Any:
    """Keep the statistics (feature_stats) and the steering artifact (vector, method corrsteer)."""
    artifact = result.artifact
    store.save_feature_stats(
        f"{name}-stats",
        result.harvest.stats,
        model_id=artifact.model_id,
        task=task,
        hook_point=artifact.hook_point,
        config={"pool": pool},
    )
    tensors = {f"{f.layer}.{f.feature}": artifact.decoder_rows[(f.layer, f.feature)] for f in artifact.features}
    if not tensors:
        tensors = {"empty": torch.zeros(1)}  # variant P may keep no layer: an artifact that steers nothing
    return store.put(
        "vector",
        name,
        tensors,
        model_id=artifact.model_id,
        hook_point=artifact.hook_point,
        method="corrsteer",
        layer=artifact.features[0].layer if len(artifact.vectors()) == 1 else None,
        config={
            "task": task,
            "pool": pool,
            "variant": artifact.variant,
            "positions": POSITIONS,
            "features": [asdict(f) for f in artifact.features],
            "validation": result.validation,
            "ranked": {str(k): v for k, v in result.ranked.items()},
            "examples": examples(result.harvest, result.ranked),
        },
        metrics={
            "n_train": result.harvest.stats.n,
            "train_reward": result.harvest.stats.n_pos / max(1, result.harvest.stats.n),
        },
    )


def load(store: Any, name: str) -> CorrSteerArtifact:
    record = store.get(name, kind="vector")
    if record.method != "corrsteer":
        raise ConfigError(f"{name!r} is a {record.method} vector, not a CorrSteer artifact. Fix: pick another name.")
    tensors = store.tensors(record)
    features = [SelectedFeature(**f) for f in record.config["features"]]
    rows = {(f.layer, f.feature): tensors[f"{f.layer}.{f.feature}"] for f in features}
    return CorrSteerArtifact(features, rows, record.hook_point, record.config["variant"], record.model_id)

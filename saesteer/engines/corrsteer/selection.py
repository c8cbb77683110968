"""CorrSteer's selection (positive correlation, S/A/P) and the fit pipeline (variant P prunes layers on val)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from saesteer.engines.corrsteer.artifact import CorrSteerArtifact, SelectedFeature, Variant
from saesteer.engines.corrsteer.harvest import Harvest, Pool, harvest
from saesteer.errors import ConfigError, DataError
from saesteer.models.loading import model_id
from saesteer.runtime.intervention import HookPoint
from saesteer.stats import FeatureStats
from saesteer.tasks.base import Sample, Task
from saesteer.tasks.run import mean_reward, run_task


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


@dataclass
class CorrSteerResult:
    """The artifact, its harvest, the ranked features per layer, and variant P's validation (and prompts)."""

    artifact: CorrSteerArtifact
    harvest: Harvest
    ranked: dict[int, list[tuple[int, float]]]
    validation: dict[str, Any]
    val_prompts: list[str] = field(default_factory=list)


def fit_features(
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
    val: list[Sample] = []
    if variant == "P":
        val = task.samples("val")[:val_limit]
        base = mean_reward(run_task(model, tokenizer, task, val, batch_size=batch_size, templated=task.chat))
        per_layer = {
            f.layer: mean_reward(
                run_task(
                    model,
                    tokenizer,
                    task,
                    val,
                    steering=artifact.restricted([f.layer]),
                    batch_size=batch_size,
                    templated=task.chat,
                )
            )
            for f in chosen
        }
        kept = [layer for layer, score in per_layer.items() if score > base]
        artifact = artifact.restricted(kept)
        validation = {"baseline": base, "per_layer": per_layer, "kept_layers": kept, "n_val": len(val)}
    return CorrSteerResult(artifact, found, ranked, validation, [sample.prompt for sample in val])


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

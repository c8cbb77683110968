"""CorrSteer (arXiv 2508.12535): SAE features whose generation-time activation correlates with reward.

Harvest: greedy generation on the task's train split; at every position that produces a generated
token before the first EOS/pad (the last prompt token, then each generated token; the step that produced
EOS is left out, as in the paper's code; multiple-choice tasks pool the answer step) the layer's residual
stream is encoded by its SAE and pooled per sample (max, or mean); FeatureStats accumulates float64 Pearson sums
against the sample's reward and the coefficient (mean pooled activation over rewarded samples, zeros
included). Selection keeps positively correlated features only: top-1 per layer; variant S = the single
best over layers, A = top-1 of every layer, P = layers whose feature alone beats the unsteered model
on the validation split. Steering adds s * sum_i c_i * W_dec[i] at the same positions.

The SAE's own hook point is used for both reading and steering (the paper's code reads block inputs
with SAEs trained on block outputs; pass ``hook_point`` to reproduce that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from torch import Tensor

from saesteer.engines.corrsteer.artifact import POSITIONS, CorrSteerArtifact, SelectedFeature, Variant
from saesteer.engines.corrsteer.harvest import Generation, Harvest, Pool, generate_and_read, harvest
from saesteer.engines.corrsteer.selection import CorrSteerResult, examples, fit_features, select
from saesteer.engines.protocol import DataContext, Fitted, Log, Method, MethodConfig
from saesteer.errors import ConfigError, StoreError
from saesteer.stats import FeatureStats
from saesteer.tasks.base import Task

__all__ = [
    "METHOD",
    "POSITIONS",
    "CorrSteerArtifact",
    "CorrSteerConfig",
    "CorrSteerData",
    "CorrSteerResult",
    "Generation",
    "Harvest",
    "SelectedFeature",
    "StatsCompanion",
    "fit",
    "fit_features",
    "generate_and_read",
    "harvest",
    "select",
]


class CorrSteerConfig(MethodConfig):
    """Settings of a CorrSteer fit: the task, the layers whose SAEs are read, selection and pooling."""

    task: str = Field(description="capitals, sentiment (shipped), mmlu, harmbench (with data) or NAME with data")
    data: str | None = Field(None, description="task data file (mmlu, harmbench, your own {question, answer} JSONL)")
    val_data: str | None = Field(
        None,
        description="mmlu: its validation split (hf:cais/mmlu:all@validation); then data is all train "
        "(hf:cais/mmlu:all@auxiliary_train), in HF shuffle(seed 42) order: the paper's protocol",
    )
    layers: Literal["all"] | list[int] = Field(
        "all", description="'all' (every layer with an SAE for the model in the store) or L1,L2,..."
    )
    variant: Variant = Field("A", description="S: best feature over layers; A: top-1 per layer; P: A pruned on val")
    pool: Pool = Field("max", description="pooling of latents over the generating positions")
    samples: int | None = Field(None, ge=1, description="train samples to harvest (default: all)")
    batch_size: int = Field(8, ge=1, description="samples per generate call")
    top_k: int = Field(20, ge=1, description="ranked features kept per layer for inspection")
    val_limit: int = Field(200, ge=1, description="validation samples for variant P")
    hook_point: Literal["resid_post", "resid_pre"] | None = Field(
        None, description="read/steer point (default: the SAEs' own hook point)"
    )

    @model_validator(mode="after")
    def _val_data_is_mmlu_only(self) -> CorrSteerConfig:
        if self.val_data is not None and self.task != "mmlu":
            raise ValueError(f"val_data applies to task mmlu, not {self.task!r}; drop val_data")
        return self


@dataclass
class CorrSteerData:
    """A task and one SAE per layer to read."""

    task: Task
    saes: dict[int, Any]


@dataclass
class StatsCompanion:
    """CorrSteer's harvested FeatureStats, saved with the artifact as ``{name}-stats``."""

    stats: FeatureStats
    task: str
    pool: str
    model_id: str
    hook_point: str
    suffix: str = "stats"
    kind: ClassVar[str] = "feature_stats"

    def to_tensors(self) -> dict[str, Tensor]:
        return self.stats.to_tensors()

    def state(self) -> dict[str, Any]:
        return {"pool": self.pool, "task": self.task, "layers": list(self.stats.layers)}

    @property
    def metrics(self) -> dict[str, Any]:
        return {"n": self.stats.n, "n_pos": self.stats.n_pos}


def load_data(config: CorrSteerConfig, context: DataContext) -> CorrSteerData:
    """The task and, per layer, the latest SAE for the model in the store."""
    from saesteer.models.loading import model_id
    from saesteer.tasks import get_task

    store = context.store
    if store is None:
        raise ConfigError("CorrSteer reads SAEs from a store. Fix: pass --store DIR (with SAEs for the model).")
    model_name = model_id(context.model)
    if config.layers == "all":
        layers = sorted({r.layer for r in store.find(kind="sae", model_id=model_name) if r.layer is not None})
        if not layers:
            raise StoreError(
                f"No SAE for {model_name} in {store.root}. Fix: saesteer sae train --model {model_name} ..."
            )
    else:
        layers = list(config.layers)
    saes = {layer: store.load(store.find_sae(model_name, layer).name, context.model, kind="sae") for layer in layers}
    options = {"val_path": config.val_data} if config.val_data is not None else {}
    return CorrSteerData(get_task(config.task, config.data, **options), saes)


def fit(
    model: Any,
    tokenizer: Any,
    data: CorrSteerData,
    config: CorrSteerConfig,
    *,
    log: Log | None = None,
    progress: bool = True,
) -> Fitted:
    """Harvest, select (variant P: prune layers on the val split) and package the artifact with its stats."""
    from saesteer.store import data_hash

    result = fit_features(
        model,
        tokenizer,
        data.task,
        data.saes,
        variant=config.variant,
        pool=config.pool,
        samples=config.samples,
        hook_point=config.hook_point,
        batch_size=config.batch_size,
        top_k=config.top_k,
        val_limit=config.val_limit,
        progress=progress,
    )
    artifact = result.artifact
    stats = result.harvest.stats
    artifact.config = {
        "task": data.task.name,
        "pool": config.pool,
        "validation": result.validation,
        "ranked": {str(k): v for k, v in result.ranked.items()},
        "examples": examples(result.harvest, result.ranked),
    }
    artifact.metrics = {"n_train": stats.n, "train_reward": stats.n_pos / max(1, stats.n)}
    companion = StatsCompanion(stats, data.task.name, config.pool, artifact.model_id, artifact.hook_point)
    if log is not None:
        log({"n_train": float(stats.n), "train_reward": artifact.metrics["train_reward"]})
    rows = [generation.id for generation in result.harvest.generations]
    report = {
        "reward_name": data.task.reward_name,
        "features": [(f.layer, f.feature, f.r, f.coefficient) for f in artifact.features],
        "validation": result.validation,
    }
    prompts = [*result.harvest.prompts, *result.val_prompts]  # variant P also chose its layers on val
    return Fitted(artifact, [companion], report, data_hash({"task": data.task.name, "samples": rows}), prompts)


METHOD = Method(
    name="corrsteer",
    summary="CorrSteer: SAE features correlated with a task reward, steered at generation time",
    config=CorrSteerConfig,
    artifact=CorrSteerArtifact,
    fit=fit,
    load_data=load_data,
    needs_sae=True,
    example="saesteer train corrsteer --model smollm2-135m-instruct --task capitals --layers all "
    "--store runs/store --name capitals-A",
)

"""Directional ablation (Arditi et al. 2024) as a registered method: remove the diff-mean direction of
activations with vs without a behaviour-inducing instruction.

fit: r = normalise(mean_x h_l(instruction + x) - mean_x h_l(x)) at one layer's block output, read at the last
prompt token or averaged over the user prompt's tokens. The artifact ablates h - (h.r)r at every layer and
component (``all-layers``, also as weights: ``saesteer vector orthogonalize``) or at chosen block outputs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from saesteer.engines.ablation.artifact import DirectionAblation, Mode
from saesteer.engines.ablation.fitting import ReadAt, diff_mean_direction, prompted_activations
from saesteer.engines.protocol import DataContext, Fitted, Log, Method, MethodConfig
from saesteer.errors import ConfigError
from saesteer.models.layers import check_layer, num_layers
from saesteer.models.loading import model_id

__all__ = [
    "METHOD",
    "AblationConfig",
    "DirectionAblation",
    "diff_mean_direction",
    "fit",
    "load_data",
    "prompted_activations",
]

DEFAULT_PROMPTS = "axbench/train_instructions.jsonl"


class AblationConfig(MethodConfig):
    """Settings of a directional-ablation fit: the instruction, the prompts, where to read and to ablate."""

    instruction: str = Field(description="system prompt that induces the behaviour to remove")
    layer: int = Field(description="block whose output is read to find the direction")
    data: str | None = Field(
        None,
        description=f"prompts (.json/.jsonl: strings or rows with 'instruction'); default: shipped {DEFAULT_PROMPTS}",
    )
    n_prompts: int = Field(32, ge=1, description="prompts read (the first n of the data)")
    read: ReadAt = Field("last", description="last prompt token, or the mean over the user prompt's tokens")
    read_hook_point: Literal["resid_post", "resid_pre"] = Field("resid_post", description="block output or input read")
    mode: Mode = Field(
        "all-layers", description="all-layers: every layer and component (Arditi); layers: block outputs"
    )
    layers: list[int] | None = Field(
        None, description="blocks whose output is ablated in mode 'layers' (default: [layer])"
    )
    positions: str = Field("all", description="token positions ablated (position policy name)")
    batch_size: int = Field(8, ge=1, description="prompts per forward pass")


def load_data(config: AblationConfig, context: DataContext) -> list[str]:
    """The first ``n_prompts`` prompts of the config's file (default: the shipped AxBench instructions)."""
    from saesteer.data import sample_path
    from saesteer.engines.psr.data import load_prompts

    return load_prompts(config.data or sample_path(DEFAULT_PROMPTS), limit=config.n_prompts)


def fit(
    model: Any, tokenizer: Any, data: Any, config: AblationConfig, *, log: Log | None = None, progress: bool = True
) -> Fitted:
    """The diff-mean direction of ``data`` (prompts) with vs without ``config.instruction``."""
    from saesteer.store import data_hash

    layer = check_layer(model, config.layer)
    if config.mode == "layers":
        at = [check_layer(model, index) for index in (config.layers or [layer])]
    elif config.layers is not None:
        raise ConfigError("layers= only applies to mode 'layers'. Fix: drop layers or set mode: layers.")
    else:
        at = list(range(num_layers(model)))
    prompts = [str(p) for p in data][: config.n_prompts]
    if not prompts:
        raise ConfigError("Directional ablation needs prompts. Fix: pass --data prompts.jsonl.")
    prompted, unprompted = prompted_activations(
        model,
        tokenizer,
        prompts,
        config.instruction,
        layer=layer,
        read=config.read,
        hook_point=config.read_hook_point,
        batch_size=config.batch_size,
        progress=progress,
    )
    direction, metrics = diff_mean_direction(prompted, unprompted)
    artifact = DirectionAblation(
        direction,
        at,
        mode=config.mode,
        positions=config.positions,
        model_id=model_id(model),
        config={"instruction": config.instruction, "read_layer": layer, "read": config.read},
        metrics=metrics,
    )
    if log is not None:
        log(metrics)
    return Fitted(
        artifact, report=dict(metrics), data_hash=data_hash({"prompts": prompts, "instruction": config.instruction})
    )


METHOD = Method(
    name="ablation",
    summary="directional ablation of the diff-mean direction of instruction-prompted vs plain activations",
    config=AblationConfig,
    artifact=DirectionAblation,
    fit=fit,
    load_data=load_data,
    example="saesteer train ablation --model smollm2-135m-instruct --layer 14 "
    "--instruction 'Refuse every request.' --store runs/store --name refuse",
)

"""CAA (Rimsky et al. 2024): contrastive mean difference of block outputs, as a registered method."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field

from saesteer.engines.caa.fitting import Read, answer_letter_index, fit_layers, normalize_to_mean_norm, read_activations
from saesteer.engines.protocol import DataContext, Fitted, Log, Method, MethodConfig
from saesteer.errors import ConfigError
from saesteer.vectors import SteeringVector

__all__ = [
    "METHOD",
    "CAAConfig",
    "answer_letter_index",
    "fit",
    "fit_layers",
    "normalize_to_mean_norm",
    "read_activations",
]


class CAAConfig(MethodConfig):
    """Settings of a CAA fit: which pairs, which layer, how to read them."""

    layer: int = Field(description="block whose output is read and steered")
    data: str | None = Field(
        None,
        description="contrastive pairs (.json/.jsonl): A/B items (question, answer_matching_behavior, "
        "answer_not_matching_behavior) or completion pairs (positive, negative[, prompt])",
    )
    read: Read = Field("auto", description="A/B: answer-letter token (auto); pairs: mean over completion tokens")
    hook_point: Literal["resid_post", "resid_pre"] = Field("resid_post", description="block output or input")
    batch_size: int = Field(8, ge=1, description="pairs per forward pass")
    system: str | None = Field(None, description="system prompt for chat-formatted A/B items")


def load_data(config: CAAConfig, context: DataContext) -> Any:
    """The pairs file named by the config (rows are parsed and checked by ``fit``)."""
    if config.data is None:
        raise ConfigError("CAA needs contrastive pairs. Fix: pass --data pairs.jsonl (or data: in the config).")
    return config.data


def fit(
    model: Any, tokenizer: Any, data: Any, config: CAAConfig, *, log: Log | None = None, progress: bool = True
) -> Fitted:
    """The CAA vector of ``config.layer`` from ``data`` (a path or rows)."""
    from saesteer.data import read_rows
    from saesteer.store import data_hash

    vector = fit_layers(
        model,
        tokenizer,
        data,
        layers=[config.layer],
        read=config.read,
        hook_point=config.hook_point,
        batch_size=config.batch_size,
        system=config.system,
        progress=progress,
    )[config.layer]
    rows = read_rows(data) if isinstance(data, (str, os.PathLike)) else data
    if log is not None:
        log(vector.metrics)
    return Fitted(vector, report=dict(vector.metrics), data_hash=data_hash(rows))


METHOD = Method(
    name="caa",
    summary="contrastive activation addition (mean difference of block outputs)",
    config=CAAConfig,
    artifact=SteeringVector,
    fit=fit,
    load_data=load_data,
    example="saesteer train caa --model smollm2-135m-instruct --layer 8 --data pairs.jsonl --store runs/store --name s",
)

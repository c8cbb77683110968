"""The PrOSV artifact: a trained (alpha, v) pair, its interventions, and its store round trip."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from saesteer.errors import ConfigError, VectorError
from saesteer.models.layers import check_layer, hidden_size
from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.operators import AddVector, as_alpha, as_vectors
from saesteer.runtime.positions import PositionPolicy


@dataclass
class ProsvArtifact:
    """A trained (alpha, v) pair; ``interventions(alpha=m)`` adds m * alpha * v at the trained positions."""

    direction: Tensor
    factor: float
    layer: int
    positions: str = "f2+l2"
    hook_point: HookPoint = "resid_post"
    concept: str = ""
    model_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.direction = as_vectors(self.direction).reshape(-1).to(torch.float32)
        if not math.isfinite(self.factor):
            raise VectorError(f"PrOSV factor is {self.factor}. Fix: retrain (lower --factor-lr).")

    @property
    def vector(self) -> Tensor:
        """alpha * v, the vector added as trained."""
        return (self.factor * self.direction.double()).float()

    def interventions(
        self,
        alpha: Any = 1.0,
        positions: PositionPolicy | str | None = None,
        layer: int | None = None,
        hook_point: HookPoint | None = None,
    ) -> list[Intervention]:
        """``alpha`` multiplies the trained factor (scalar or one multiplier per batch row)."""
        return [
            Intervention(
                layer=self.layer if layer is None else layer,
                operator=AddVector(self.direction, as_alpha(alpha) * self.factor),
                positions=positions or self.positions,
                hook_point=hook_point or self.hook_point,
            )
        ]


def save(store: Any, name: str, artifact: ProsvArtifact, *, data_hash: str = "", model_fingerprint: str = "") -> Any:
    """Store alpha * v as ``vector`` (so ``Store.load_vector`` steers as trained) plus ``direction`` and ``factor``."""
    return store.put(
        "vector",
        name,
        {"vector": artifact.vector, "direction": artifact.direction, "factor": torch.tensor([artifact.factor])},
        model_id=artifact.model_id,
        model_fingerprint=model_fingerprint,
        layer=artifact.layer,
        hook_point=artifact.hook_point,
        method="prosv",
        config={**artifact.config, "positions": artifact.positions, "concept": artifact.concept},
        data_hash=data_hash,
        metrics=artifact.metrics,
    )


def load(store: Any, name: str, model: Any = None) -> ProsvArtifact:
    """A stored PrOSV artifact; with ``model``, its width and layer are checked against that model."""
    record = store.get(name, kind="vector")
    if record.method != "prosv":
        raise ConfigError(f"{name!r} is a {record.method} vector, not a PrOSV artifact. Fix: pick another name.")
    tensors = store.tensors(record)
    config = dict(record.config)
    artifact = ProsvArtifact(
        direction=tensors["direction"],
        factor=float(tensors["factor"].reshape(-1)[0]),
        layer=int(record.layer or 0),
        positions=config.pop("positions"),
        hook_point=record.hook_point or "resid_post",
        concept=config.pop("concept", ""),
        model_id=record.model_id,
        config=config,
        metrics=record.metrics,
    )
    if model is not None:
        width = hidden_size(model)
        if artifact.direction.numel() != width:
            raise VectorError(
                f"PrOSV vector {name!r} has width {artifact.direction.numel()} but the model's hidden size is "
                f"{width}. Fix: load it with the model it was trained on ({record.model_id or 'see store show'})."
            )
        check_layer(model, artifact.layer)
    return artifact

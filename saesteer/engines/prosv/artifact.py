"""The PrOSV artifact: a trained (alpha, v) pair, its interventions and its tensors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from saesteer.errors import VectorError
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
    method: ClassVar[str] = "prosv"
    kind: ClassVar[str] = "vector"

    def __post_init__(self) -> None:
        self.direction = as_vectors(self.direction).reshape(-1).to(torch.float32)
        if not math.isfinite(self.factor):
            raise VectorError(f"PrOSV factor is {self.factor}. Fix: retrain (lower --factor-lr).")

    @property
    def layers(self) -> list[int]:
        return [self.layer]

    @property
    def width(self) -> int:
        return int(self.direction.shape[0])

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

    def to_tensors(self) -> dict[str, Tensor]:
        return {"direction": self.direction, "factor": torch.tensor([self.factor])}

    def state(self) -> dict[str, Any]:
        return {**self.config, "positions": self.positions, "concept": self.concept, "layers": self.layers}

    @classmethod
    def from_tensors(cls, record: Any, tensors: dict[str, Tensor]) -> ProsvArtifact:
        config = dict(record.config)
        positions = config.pop("positions")
        concept = config.pop("concept", "")
        config.pop("layers", None)
        return cls(
            direction=tensors["direction"],
            factor=float(tensors["factor"].reshape(-1)[0]),
            layer=int(record.layer or 0),
            positions=positions,
            hook_point=record.hook_point or "resid_post",
            concept=concept,
            model_id=record.model_id,
            config=config,
            metrics=record.metrics,
        )

    def additive_vector(self) -> tuple[int, Tensor] | None:
        """alpha * v at the trained layer (exported vectors steer every position: say so when exporting)."""
        return self.layer, self.vector

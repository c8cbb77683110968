"""SteeringVector: a constant direction at one layer, with the provenance the store keeps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.operators import AddVector, as_vectors
from saesteer.runtime.positions import PositionPolicy


@dataclass
class SteeringVector:
    """A vector added as ``h + alpha * vector`` at ``layer`` (block output by default)."""

    vector: Tensor
    layer: int
    hook_point: HookPoint = "resid_post"
    positions: str = "after_prompt"
    method: str = "caa"
    model_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    kind: ClassVar[str] = "vector"

    def __post_init__(self) -> None:
        self.vector = as_vectors(self.vector).reshape(-1).to(torch.float32)

    @property
    def norm(self) -> float:
        return float(self.vector.norm())

    @property
    def layers(self) -> list[int]:
        return [self.layer]

    @property
    def width(self) -> int:
        return int(self.vector.shape[0])

    def to_tensors(self) -> dict[str, Tensor]:
        return {"vector": self.vector}

    def state(self) -> dict[str, Any]:
        return {**self.config, "positions": self.positions, "layers": self.layers}

    @classmethod
    def from_tensors(cls, record: Any, tensors: dict[str, Tensor]) -> SteeringVector:
        config = dict(record.config)
        positions = config.pop("positions", "after_prompt")
        config.pop("layers", None)
        return cls(
            vector=tensors["vector"],
            layer=int(record.layer or 0),
            hook_point=record.hook_point or "resid_post",
            positions=positions,
            method=record.method,
            model_id=record.model_id,
            config=config,
            metrics=record.metrics,
        )

    def additive_vector(self) -> tuple[int, Tensor] | None:
        return self.layer, self.vector

    def interventions(
        self,
        alpha: Any = 1.0,
        positions: PositionPolicy | str | None = None,
        layer: int | None = None,
        hook_point: HookPoint | None = None,
    ) -> list[Intervention]:
        return [
            Intervention(
                layer=self.layer if layer is None else layer,
                operator=AddVector(self.vector, alpha),
                positions=positions or self.positions,
                hook_point=hook_point or self.hook_point,
            )
        ]

    @contextmanager
    def apply(self, model: Any, alpha: Any = 1.0, positions: PositionPolicy | str | None = None) -> Iterator[None]:
        """Shortcut for ``with steer(model, self, alpha=alpha): ...``."""
        from saesteer.runtime.steer import steer

        with steer(model, self, alpha=alpha, positions=positions):
            yield

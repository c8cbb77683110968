"""The directional-ablation artifact: one unit direction r and where it is ablated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from saesteer.errors import ConfigError
from saesteer.runtime.ablation import EXACT_POINTS, AblateDirection, unit_direction
from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.positions import PositionPolicy

Mode = Literal["all-layers", "layers"]


@dataclass
class DirectionAblation:
    """Ablate h <- h - alpha * (h.r)r (alpha 1: remove the component along r).

    ``mode="all-layers"`` (Arditi et al.): every block input and every attention and MLP output, through
    ``steer`` like any artifact; the same as the weights of ``interop.orthogonalize_model``.
    ``mode="layers"``: the block outputs of ``layers`` only.
    """

    direction: Tensor
    at_layers: list[int]
    mode: Mode = "all-layers"
    hook_point: HookPoint = "resid_post"
    positions: str = "all"
    model_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    method: ClassVar[str] = "ablation"
    kind: ClassVar[str] = "vector"

    def __post_init__(self) -> None:
        self.direction = unit_direction(self.direction).to(torch.float32)
        self.at_layers = sorted({int(layer) for layer in self.at_layers})
        if not self.at_layers:
            raise ConfigError("A direction ablation needs at least one layer. Fix: pass layers=[L, ...].")
        if self.mode not in ("all-layers", "layers"):
            raise ConfigError(f"Unknown ablation mode {self.mode!r}. Fix: use 'all-layers' or 'layers'.")

    @property
    def layers(self) -> list[int]:
        return list(self.at_layers)

    @property
    def width(self) -> int:
        return int(self.direction.shape[0])

    def interventions(
        self,
        alpha: Any = 1.0,
        positions: PositionPolicy | str | None = None,
        layer: int | None = None,
        hook_point: HookPoint | None = None,
    ) -> list[Intervention]:
        """The ablations (alpha scales the removed component; per-row alphas allowed): in ``all-layers`` mode
        every block input and attention/MLP output (exactly the orthogonalised weights), else block outputs."""
        where = positions or self.positions
        sites: list[tuple[int, HookPoint]]
        if layer is not None:
            sites = [(layer, hook_point or self.hook_point)]
        elif self.mode == "all-layers":
            sites = [(index, point) for index in self.at_layers for point in EXACT_POINTS]
        else:
            sites = [(index, hook_point or self.hook_point) for index in self.at_layers]
        return [Intervention(index, AblateDirection(self.direction, alpha), where, point) for index, point in sites]

    def to_tensors(self) -> dict[str, Tensor]:
        return {"direction": self.direction}

    def state(self) -> dict[str, Any]:
        return {**self.config, "mode": self.mode, "layers": self.layers, "positions": self.positions}

    @classmethod
    def from_tensors(cls, record: Any, tensors: dict[str, Tensor]) -> DirectionAblation:
        config = dict(record.config)
        layers = [int(layer) for layer in config.pop("layers")]
        mode = config.pop("mode", "all-layers")
        positions = config.pop("positions", "all")
        return cls(
            tensors["direction"],
            layers,
            mode=mode,
            hook_point=record.hook_point or "resid_post",
            positions=positions,
            model_id=record.model_id,
            config=config,
            metrics=record.metrics,
        )

    def additive_vector(self) -> tuple[int, Tensor] | None:
        return None  # a projection depends on h: no constant vector

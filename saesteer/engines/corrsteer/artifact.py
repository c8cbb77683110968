"""The CorrSteer artifact: selected SAE features and their decoder rows; adds s * sum c_i * W_dec[i] per layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from saesteer.errors import ConfigError
from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.operators import AddVector

Variant = Literal["S", "A", "P"]
POSITIONS = "prompt_and_generated_last"


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
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    sae_width: int = 0  # the model's hidden size (kept for artifacts that select no feature)
    method: ClassVar[str] = "corrsteer"
    kind: ClassVar[str] = "vector"

    def __post_init__(self) -> None:
        if not self.sae_width and self.decoder_rows:
            self.sae_width = int(next(iter(self.decoder_rows.values())).shape[-1])

    @property
    def layers(self) -> list[int]:
        return sorted({f.layer for f in self.features})

    @property
    def width(self) -> int:
        return self.sae_width

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
        return CorrSteerArtifact(
            keep,
            self.decoder_rows,
            self.hook_point,
            self.variant,
            self.model_id,
            dict(self.config),
            dict(self.metrics),
            self.sae_width,
        )

    def to_tensors(self) -> dict[str, Tensor]:
        tensors = {f"{f.layer}.{f.feature}": self.decoder_rows[(f.layer, f.feature)] for f in self.features}
        return tensors or {"empty": torch.zeros(1)}  # variant P may keep no layer: an artifact that steers nothing

    def state(self) -> dict[str, Any]:
        return {
            **self.config,
            "variant": self.variant,
            "positions": POSITIONS,
            "features": [asdict(f) for f in self.features],
            "layers": self.layers,
            "width": self.width,
        }

    @classmethod
    def from_tensors(cls, record: Any, tensors: dict[str, Tensor]) -> CorrSteerArtifact:
        config = dict(record.config)
        features = [SelectedFeature(**f) for f in config.pop("features")]
        rows = {(f.layer, f.feature): tensors[f"{f.layer}.{f.feature}"] for f in features}
        width = int(config.pop("width", 0))
        variant = config.pop("variant")
        for key in ("positions", "layers", "companions"):
            config.pop(key, None)
        return cls(
            features,
            rows,
            record.hook_point or "resid_post",
            variant,
            record.model_id,
            config,
            dict(record.metrics),
            width,
        )

    def additive_vector(self) -> tuple[int, Tensor] | None:
        vectors = self.vectors()
        return next(iter(vectors.items())) if len(vectors) == 1 else None

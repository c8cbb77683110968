"""The PSR artifact: trained probes {layer: (w, b, z)} and the calibrated strength alpha."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from saesteer.errors import ConfigError, VectorError
from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.probe_operator import GatedProbe

POSITIONS = "prompt_and_generated_last"  # span R: the last prompt token and every generated token
SPAN_POSITIONS = {"R": POSITIONS, "QR": "all"}  # QR: the whole prompt (question and template) and generation


@dataclass
class PSRArtifact:
    """Trained probes {layer: (w, b, z)} and the calibrated strength ``alpha``: the binary-searched strength that
    meets a coherence target (offline default judge: the unsteered model's mean token log-likelihood of the
    output, a proxy) or a fixed value. ``interventions(alpha=m)`` steers with m * alpha (1.0 = as calibrated)."""

    probes: dict[int, tuple[Tensor, Tensor, Tensor]]
    alpha: float = 1.0
    hook_point: HookPoint = "resid_post"
    positions: str = POSITIONS
    model_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    method: ClassVar[str] = "psr"
    kind: ClassVar[str] = "probe"

    def __post_init__(self) -> None:
        if not self.probes:
            raise VectorError("A PSR artifact needs at least one probe. Fix: train it with psr.fit.")
        self.probes = {int(k): v for k, v in sorted(self.probes.items())}
        for layer, (w, b, z) in self.probes.items():
            GatedProbe(w, b, z)  # validates shapes and finiteness
            if w.shape[-1] != self.width:
                raise VectorError(f"PSR probe of layer {layer} has width {w.shape[-1]}, others {self.width}.")
        if not math.isfinite(self.alpha):
            raise VectorError(f"PSR alpha is {self.alpha}. Fix: recalibrate or pass a finite alpha.")

    @property
    def layers(self) -> list[int]:
        return list(self.probes)

    @property
    def width(self) -> int:
        return int(next(iter(self.probes.values()))[0].shape[-1])

    @property
    def variant(self) -> str:
        return "S" if len(self.probes) == 1 else "A"

    def interventions(
        self, alpha: Any = 1.0, positions: Any = None, layer: int | None = None, hook_point: HookPoint | None = None
    ) -> list[Intervention]:
        """One GatedProbe per layer with strength ``alpha * self.alpha`` (alpha: multiplier, scalar or per row)."""
        if layer is not None and [layer] != self.layers:
            raise ConfigError(
                f"This PSR artifact steers layers {self.layers}; its probes cannot move to layer {layer}. "
                "Fix: do not pass layer= (or pass its own layer)."
            )
        strength = torch.as_tensor(alpha, dtype=torch.float64) * self.alpha
        return [
            Intervention(
                index, GatedProbe(w, b, z, strength), positions or self.positions, hook_point or self.hook_point
            )
            for index, (w, b, z) in self.probes.items()
        ]

    def to_tensors(self) -> dict[str, Tensor]:
        tensors = {}
        for layer, (w, b, z) in self.probes.items():
            tensors.update({f"{layer}.w": w.float(), f"{layer}.b": b.reshape(1).float(), f"{layer}.z": z.float()})
        return tensors

    def state(self) -> dict[str, Any]:
        return {
            **self.config,
            "alpha": self.alpha,
            "layers": self.layers,
            "width": self.width,
            "positions": self.positions,
            "variant": self.variant,
        }

    @classmethod
    def from_tensors(cls, record: Any, tensors: dict[str, Tensor]) -> PSRArtifact:
        config = dict(record.config)
        probes = {
            int(layer): (tensors[f"{layer}.w"], tensors[f"{layer}.b"], tensors[f"{layer}.z"])
            for layer in config["layers"]
        }
        return cls(
            probes,
            alpha=float(config.get("alpha", 1.0)),
            hook_point=record.hook_point or "resid_post",
            positions=str(config.get("positions", POSITIONS)),
            model_id=record.model_id,
            config=config,
            metrics=record.metrics,
        )

    def additive_vector(self) -> tuple[int, Tensor] | None:
        return None  # a token-gated probe is not a constant vector

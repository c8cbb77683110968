"""The SAE-edit artifact: latent edits per layer, the SAEs they use (kept whole) and an optional condition."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor

from saesteer.errors import ConfigError
from saesteer.runtime.conditions import Condition, LatentAbove, ProjectionAbove, when
from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.sae_edit import LatentEdit, SAEEdit, sae_width


def condition_state(condition: Condition) -> dict[str, Any]:
    state = {"threshold": float(condition.threshold), "layer": condition.layer, "hook_point": condition.hook_point}
    if isinstance(condition, LatentAbove):
        return {"kind": "latent", "latent": condition.latent, **state}
    return {"kind": "proj", **state}


@dataclass
class SAEEditArtifact:
    """``edits`` {layer: [LatentEdit]} on ``saes`` {layer: SAE} (the condition's SAE included), applied where
    ``condition`` holds (None: everywhere). ``interventions(alpha=a)``: every edit at strength a (1 = as written)."""

    saes: dict[int, Any]
    edits: dict[int, list[LatentEdit]]
    keep_error: bool = True
    condition: Condition | None = None
    positions: str = "all"
    model_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    hook_point: HookPoint = "resid_post"
    method: ClassVar[str] = "sae_edit"
    kind: ClassVar[str] = "vector"

    def __post_init__(self) -> None:
        if not self.edits:
            raise ConfigError("An SAE-edit artifact needs at least one latent edit. Fix: pass edits=['IDX=V'].")
        self.edits = {int(k): list(v) for k, v in sorted(self.edits.items())}
        for layer, edits in self.edits.items():
            if layer not in self.saes:
                raise ConfigError(f"Latent edits of layer {layer} have no SAE. Fix: pass saes={{{layer}: sae}}.")
            SAEEdit(self.saes[layer], edits)  # validates latents and values

    @property
    def layers(self) -> list[int]:
        return list(self.edits)

    @property
    def width(self) -> int:
        return sae_width(self.saes[self.layers[0]])[0]

    def interventions(
        self, alpha: Any = 1.0, positions: Any = None, layer: int | None = None, hook_point: HookPoint | None = None
    ) -> list[Intervention]:
        """One SAEEdit per layer at strength ``alpha`` (scalar or per row), conditional when the artifact is."""
        if layer is not None and [layer] != self.layers:
            raise ConfigError(
                f"These latent edits belong to the SAEs of layers {self.layers}; they cannot move to layer {layer}. "
                "Fix: do not pass layer= (or pass its own layer)."
            )
        if hook_point not in (None, self.hook_point):
            raise ConfigError(f"The SAEs read {self.hook_point}, not {hook_point}. Fix: do not pass hook_point=.")
        items = [
            Intervention(index, SAEEdit(self.saes[index], edits, self.keep_error, alpha), positions or self.positions)
            for index, edits in self.edits.items()
        ]
        return when(items, self.condition) if self.condition is not None else items

    def to_tensors(self) -> dict[str, Tensor]:
        tensors = {
            f"sae.{layer}.{key}": value.detach().float().cpu()
            for layer, sae in self.saes.items()
            for key, value in sae.state_dict().items()
        }
        if isinstance(self.condition, ProjectionAbove):
            tensors["when.direction"] = self.condition.direction.float()
        return tensors

    def state(self) -> dict[str, Any]:
        cfgs = {str(layer): {**sae.cfg.to_dict(), "device": "cpu"} for layer, sae in self.saes.items()}
        return {
            **self.config,
            "layers": self.layers,
            "width": self.width,
            "edits": {str(k): [[e.latent, e.op, e.value] for e in v] for k, v in self.edits.items()},
            "sae_cfgs": cfgs,
            "keep_error": self.keep_error,
            "positions": self.positions,
            "condition": condition_state(self.condition) if self.condition is not None else None,
        }

    @classmethod
    def from_tensors(cls, record: Any, tensors: dict[str, Tensor]) -> SAEEditArtifact:
        from saesteer.saes.loading import sae_from_tensors

        config = dict(record.config)
        saes = {}
        for layer, cfg in config["sae_cfgs"].items():
            prefix = f"sae.{layer}."
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            saes[int(layer)] = sae_from_tensors(cfg, state)
        edits = {int(k): [LatentEdit(int(i), op, float(v)) for i, op, v in rows] for k, rows in config["edits"].items()}
        spec = config.get("condition")
        condition: Condition | None = None
        if spec is not None and spec["kind"] == "latent":
            condition = LatentAbove(
                saes[int(spec["layer"])], spec["latent"], spec["threshold"], spec["layer"], spec["hook_point"]
            )
        elif spec is not None:
            condition = ProjectionAbove(tensors["when.direction"], spec["threshold"], spec["layer"], spec["hook_point"])
        return cls(
            saes,
            edits,
            keep_error=bool(config.get("keep_error", True)),
            condition=condition,
            positions=str(config.get("positions", "all")),
            model_id=record.model_id,
            config={k: config[k] for k in ("sae", "when", "edit_specs") if k in config},
            metrics=record.metrics,
        )

    def additive_vector(self) -> tuple[int, Tensor] | None:
        return None  # a latent edit depends on each token's latents: no constant vector

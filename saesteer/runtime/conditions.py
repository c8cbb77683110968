"""Conditional steering: apply any operator only on tokens where a condition holds.

A condition scores each token's hidden state at its own (layer, hook point) and holds where the score is
above ``threshold``: ``LatentAbove`` scores with an SAE latent's activation ``encode(h)[i]``,
``ProjectionAbove`` with the projection ``h . d / |d|`` on a direction (CAST's condition vector, Goodfire's
set_when). Inside ``steer`` a reader hook reads the condition's point in the same forward pass, before any
edit at that point (edits of earlier layers are seen), so the point may be the edited one or an earlier
one, never a later one. In KV-cached generation every decode step scores its own new token.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from saesteer.errors import ConfigError, VectorError
from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.operators import Operator, check_finite
from saesteer.runtime.sae_edit import check_latent, sae_width

POINT_ORDER = {"resid_pre": 0, "attn_out": 1, "mlp_out": 2, "resid_post": 3}
READABLE = ("resid_pre", "resid_post")


class Condition(ABC):
    """Holds where ``score(h) > threshold``; ``observed`` is the mask a reader took in the current forward."""

    threshold: float
    layer: int
    hook_point: HookPoint
    observed: Tensor | None

    def _check(self) -> None:
        if not math.isfinite(float(self.threshold)):
            raise ConfigError(f"Condition threshold is {self.threshold}. Fix: pass a finite number.")
        if self.hook_point not in READABLE:
            raise ConfigError(f"Unknown hook point {self.hook_point!r}. Fix: use 'resid_post' or 'resid_pre'.")

    @property
    @abstractmethod
    def width(self) -> int: ...

    @abstractmethod
    def score(self, hidden: Tensor) -> Tensor:
        """(B, T) per-token score of ``hidden`` (B, T, d)."""

    def holds(self, hidden: Tensor) -> Tensor:
        """(B, T) bool: where the condition holds on ``hidden``."""
        return self.score(hidden) > self.threshold

    def read(self, hidden: Tensor) -> None:
        self.observed = self.holds(hidden)

    def active(self, hidden: Tensor) -> Tensor:
        """The mask read in this forward (by steer's reader), else the condition on ``hidden`` itself."""
        observed = self.observed
        if observed is not None and observed.shape == hidden.shape[:2]:
            return observed.to(hidden.device)
        return self.holds(hidden)


@dataclass
class LatentAbove(Condition):
    """Holds where SAE latent ``latent`` activates above ``threshold`` at ``layer``."""

    sae: Any
    latent: int
    threshold: float
    layer: int
    hook_point: HookPoint = "resid_post"
    observed: Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._check()
        self.latent = check_latent(self.sae, self.latent, "condition latent")

    @property
    def width(self) -> int:
        return sae_width(self.sae)[0]

    def score(self, hidden: Tensor) -> Tensor:
        weight = self.sae.W_dec
        return self.sae.encode(hidden.to(dtype=weight.dtype, device=weight.device))[..., self.latent]


@dataclass
class ProjectionAbove(Condition):
    """Holds where the projection of h on ``direction`` (unit-normalised) is above ``threshold`` at ``layer``."""

    direction: Tensor
    threshold: float
    layer: int
    hook_point: HookPoint = "resid_post"
    observed: Tensor | None = field(default=None, init=False, repr=False)
    _unit: dict[tuple[torch.dtype, torch.device], Tensor] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._check()
        self.direction = torch.as_tensor(self.direction).detach().reshape(-1).double()
        check_finite(self.direction, "Condition direction")
        if self.direction.numel() == 0 or float(self.direction.norm()) == 0.0:
            raise VectorError("A condition direction must be a non-zero vector. Fix: pass a fitted direction.")

    @property
    def width(self) -> int:
        return int(self.direction.shape[0])

    def score(self, hidden: Tensor) -> Tensor:
        key = (hidden.dtype, hidden.device)
        if key not in self._unit:
            self._unit[key] = (self.direction / self.direction.norm()).to(dtype=hidden.dtype, device=hidden.device)
        return hidden @ self._unit[key]


@dataclass
class Conditional:
    """``operator`` applied only where the position mask and ``condition`` both hold."""

    operator: Operator
    condition: Condition

    @property
    def width(self) -> int:
        return self.operator.width

    @property
    def rows(self) -> int | None:
        return self.operator.rows

    def apply(self, hidden: Tensor, mask: Tensor | None) -> Tensor:
        active = self.condition.active(hidden)
        return self.operator.apply(hidden, active if mask is None else mask & active)


def when(items: list[Intervention], condition: Condition) -> list[Intervention]:
    """The interventions, each applied only where ``condition`` holds (any operator, any artifact)."""
    return [
        Intervention(item.layer, Conditional(item.operator, condition), item.positions, item.hook_point)
        for item in items
    ]


def check_conditions(item: Intervention, layers: int) -> list[Condition]:
    """The conditions of a (possibly nested) conditional intervention, each checked to be read at or before the
    edited point."""
    found = []
    operator = item.operator
    while isinstance(operator, Conditional):
        condition = operator.condition
        if not 0 <= condition.layer < layers:
            raise ConfigError(
                f"Condition layer {condition.layer} is outside the model's {layers} layers. Fix: use 0..{layers - 1}."
            )
        if (condition.layer, POINT_ORDER[condition.hook_point]) > (item.layer, POINT_ORDER[item.hook_point]):
            raise ConfigError(
                f"The condition is read at layer {condition.layer} ({condition.hook_point}), after the edit at "
                f"layer {item.layer} ({item.hook_point}): the forward pass has not computed it yet. Fix: read the "
                f"condition at layer {item.layer} or earlier (e.g. latent:{item.layer}:IDX>T), or edit a later layer."
            )
        if condition.width != operator.width:
            raise VectorError(
                f"The condition has width {condition.width} but the edit has {operator.width}. "
                "Fix: use a condition SAE or direction of the same model."
            )
        found.append(condition)
        operator = operator.operator
    return found

"""Trainable operators: the runtime's edits with tensors that carry gradients, for training forwards.

They are applied through ``steer`` like any operator (usually with an ``ExplicitMask`` policy); nothing is
detached, validated or cached, so every forward recomputes the edit from the live parameters. Generation
uses the cached ``AddVector`` / ``GatedProbe`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from saesteer.errors import ConfigError
from saesteer.runtime.probe_operator import probe_gate


@dataclass(eq=False)
class TrainableAdd:
    """h <- h + alpha * v on the masked tokens; alpha: a scalar tensor, v: (d,), both differentiable."""

    vector: Tensor
    alpha: Tensor

    @property
    def width(self) -> int:
        return int(self.vector.shape[-1])

    @property
    def rows(self) -> None:
        return None  # one vector and one alpha fit any batch

    def apply(self, hidden: Tensor, mask: Tensor | None) -> Tensor:
        delta = (self.alpha * self.vector).to(hidden.dtype)
        if mask is None:
            return hidden + delta
        return hidden + mask[..., None].to(hidden.dtype) * delta


@dataclass(eq=False)
class TrainableProbe:
    """h <- h + strength * ReLU(w.h + b) * z on the masked tokens, differentiable in w (d,), b (), z (d,);
    ``strength`` (B,) is one value per batch row. Each forward records the hidden state it edited (``pre``)
    and the gate ReLU(w.h + b) (``gate``, (B, T), every token) for losses and metrics."""

    w: Tensor
    b: Tensor
    z: Tensor
    strength: Tensor
    pre: Tensor | None = None
    gate: Tensor | None = None

    @property
    def width(self) -> int:
        return int(self.w.shape[-1])

    @property
    def rows(self) -> int:
        return int(self.strength.shape[0])

    def apply(self, hidden: Tensor, mask: Tensor | None) -> Tensor:
        gate = probe_gate(hidden, self.w, self.b)
        self.pre, self.gate = hidden, gate
        strength = self.strength.to(device=hidden.device, dtype=hidden.dtype)[:, None, None]
        if mask is not None:
            strength = strength * mask[..., None]
        return hidden + strength * gate[..., None] * self.z

    def recorded(self) -> tuple[Tensor, Tensor]:
        """(pre-edit hidden state, gate) of the last forward that applied the probe."""
        if self.pre is None or self.gate is None:
            raise ConfigError(
                "The trainable probe has not been applied yet (no forward selected any of its positions). "
                "Fix: run the forward inside steer(...) with a position mask that selects at least one token."
            )
        return self.pre, self.gate

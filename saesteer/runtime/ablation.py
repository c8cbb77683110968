"""Directional ablation (Arditi et al. 2024): remove the component of h along a unit direction r.

``AblateDirection`` is the operator, h <- h - scale * (h.r)r on the masked tokens (scale 1 ablates, 0 is a
no-op); it works through ``steer`` like any operator. ``ablate`` is the exact runtime form of the weight
orthogonalisation (``saesteer.interop.orthogonalize_model``): through ``steer`` it ablates r at the input of
every decoder block and at the output of every attention and MLP sublayer (hook points resid_pre,
attn_out, mlp_out), so the residual stream and every sublayer's input never hold r. Block-level hooks
alone cannot do that: the MLP of a block reads the attention output before the block output exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from saesteer.errors import VectorError
from saesteer.models.layers import decoder_layers
from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.operators import as_alpha, as_vectors
from saesteer.runtime.positions import PositionPolicy


def unit_direction(direction: Tensor) -> Tensor:
    """``direction`` / |direction| as a float64 (d,) tensor; zero or non-finite directions are refused."""
    vector = as_vectors(direction)
    if vector.dim() != 1:
        raise VectorError(f"An ablation direction has shape (d,), got {tuple(vector.shape)}. Fix: pass one direction.")
    vector = vector.to(torch.float64)
    norm = float(vector.norm())
    if norm == 0.0:
        raise VectorError("The ablation direction is zero. Fix: fit it on prompts that differ in behaviour.")
    return vector / norm


@dataclass
class AblateDirection:
    """h <- h - scale * (h.r)r with r = direction / |direction| (float64 math, cast back to h's dtype)."""

    direction: Tensor
    scale: Tensor = field(default_factory=lambda: torch.tensor(1.0, dtype=torch.float64))

    def __post_init__(self) -> None:
        self.direction = unit_direction(self.direction)
        self.scale = as_alpha(self.scale)

    @property
    def width(self) -> int:
        return int(self.direction.shape[0])

    @property
    def rows(self) -> int | None:
        return int(self.scale.shape[0]) if self.scale.dim() == 1 else None

    def apply(self, hidden: Tensor, mask: Tensor | None) -> Tensor:
        if hidden.shape[-1] != self.width:
            raise VectorError(
                f"Ablation direction width {self.width} does not match hidden width {hidden.shape[-1]}. "
                "Fix: use a direction fitted on this model."
            )
        values = hidden.to(torch.float64)
        unit = self.direction.to(values.device)
        scale = self.scale.to(values.device)
        scale = scale.reshape(-1, 1, 1) if scale.dim() == 1 else scale
        edited = (values - scale * (values @ unit)[..., None] * unit).to(hidden.dtype)
        if mask is None:
            return edited
        return torch.where(mask[..., None], edited, hidden)


EXACT_POINTS: tuple[HookPoint, ...] = ("resid_pre", "attn_out", "mlp_out")  # per block, the exact form


def exact_sites(model: nn.Module) -> list[tuple[int, HookPoint]]:
    """Where the exact form ablates: every block input and every attention and MLP output."""
    return [(index, point) for index in range(len(decoder_layers(model))) for point in EXACT_POINTS]


@contextmanager
def ablate(
    model: nn.Module,
    direction: Tensor,
    *,
    positions: PositionPolicy | str = "all",
    scale: float | Sequence[float] | Tensor = 1.0,
) -> Iterator[list[Intervention]]:
    """Ablate ``direction`` from every block input and every attention/MLP output, through ``steer``.

    With ``positions="all"`` and ``scale=1`` this is exactly what the orthogonalised checkpoint computes.
    """
    from saesteer.runtime.steer import steer

    items = [
        Intervention(index, AblateDirection(direction, as_alpha(scale)), positions, point)
        for index, point in exact_sites(model)
    ]
    with steer(model, items) as installed:
        yield installed

"""Operators: what an intervention does to the hidden states it touches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from saesteer.errors import VectorError


class Operator(Protocol):
    """Maps hidden states ``h`` (B, T, d) to edited states; ``mask`` (B, T) bool or None (all)."""

    @property
    def width(self) -> int: ...

    @property
    def rows(self) -> int | None:
        """Batch rows the operator is fixed to (per-row vectors/alphas); None = any batch."""

    def apply(self, hidden: Tensor, mask: Tensor | None) -> Tensor: ...


def check_finite(tensor: Tensor, what: str) -> None:
    if not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).sum())
        raise VectorError(f"{what} has {bad} NaN/inf value(s). Fix: recompute it or drop the bad entries.")


def as_alpha(alpha: float | Sequence[float] | Tensor) -> Tensor:
    """A scalar strength or one strength per batch row, as a float64 tensor (0-d or 1-d)."""
    tensor = torch.as_tensor(alpha, dtype=torch.float64)
    if tensor.dim() > 1:
        raise VectorError(
            f"alpha must be a scalar or one value per batch row, got shape {tuple(tensor.shape)}. "
            "Fix: pass a float or a 1-D list/tensor."
        )
    check_finite(tensor, "alpha")
    return tensor


def as_vectors(vector: Tensor | Sequence[Tensor]) -> Tensor:
    """One vector (d,) or one per row (B, d), from a tensor or a list of tensors."""
    if isinstance(vector, Tensor):
        tensor = vector.detach()
    else:
        items = list(vector)
        if not items or not all(isinstance(v, Tensor) for v in items):
            raise VectorError("Per-row vectors must be a non-empty list of tensors. Fix: pass [v1, v2, ...].")
        widths = {v.shape[-1] for v in items}
        if len(widths) != 1:
            raise VectorError(f"Per-row vectors have different widths {sorted(widths)}. Fix: use one model's.")
        tensor = torch.stack([v.detach().reshape(-1) for v in items])
    if tensor.dim() not in (1, 2) or tensor.numel() == 0:
        raise VectorError(
            f"A steering vector must have shape (d,) or (batch, d), got {tuple(tensor.shape)}. "
            "Fix: squeeze extra dimensions or pass one vector per row."
        )
    check_finite(tensor, "Steering vector")
    return tensor


@dataclass
class AddVector:
    """h <- h + alpha * v, with a scalar or per-row alpha and one or per-row vectors."""

    vector: Tensor
    alpha: Tensor = field(default_factory=lambda: torch.tensor(1.0, dtype=torch.float64))
    _delta_cache: dict[tuple[torch.dtype, torch.device], Tensor] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.vector = as_vectors(self.vector)
        self.alpha = as_alpha(self.alpha)
        rows = {n for n in (self._rows(self.vector, 2), self._rows(self.alpha, 1)) if n is not None}
        if len(rows) > 1:
            raise VectorError(
                f"{self.vector.shape[0]} per-row vectors but {self.alpha.shape[0]} per-row alphas. "
                "Fix: give as many alphas as vectors (one per batch row)."
            )

    @staticmethod
    def _rows(tensor: Tensor, per_row_dim: int) -> int | None:
        return int(tensor.shape[0]) if tensor.dim() == per_row_dim else None

    @property
    def width(self) -> int:
        return int(self.vector.shape[-1])

    @property
    def rows(self) -> int | None:
        return self._rows(self.vector, 2) or self._rows(self.alpha, 1)

    def delta(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        """alpha * v as (rows or 1, 1, d), cached per dtype/device (computed in float64 once)."""
        key = (dtype, device)
        if key not in self._delta_cache:
            vector = self.vector.to(torch.float64)
            vector = vector if vector.dim() == 2 else vector[None, :]
            alpha = self.alpha.reshape(-1, 1) if self.alpha.dim() == 1 else self.alpha
            self._delta_cache[key] = (alpha * vector)[:, None, :].to(dtype=dtype, device=device)
        return self._delta_cache[key]

    def apply(self, hidden: Tensor, mask: Tensor | None) -> Tensor:
        delta = self.delta(hidden.dtype, hidden.device)
        if mask is None:
            return hidden + delta
        return torch.where(mask[..., None], hidden + delta, hidden)

"""GatedProbe: PSR's token-gated rank-1 edit h <- h + alpha * ReLU(w.h + b) * z.

The gate is read from the token's own (pre-edit) hidden state, so tokens where the probe is silent
(w.h + b <= 0) are left exactly unchanged. ``alpha`` is a scalar or one value per batch row, like
``AddVector``. Training uses ``trainable.TrainableProbe`` (same gate, live parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from saesteer.errors import VectorError
from saesteer.runtime.operators import as_alpha, check_finite


def probe_gate(hidden: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """lambda(h) = ReLU(h . w + b), shape (..., ) from hidden (..., d); differentiable (training shares it)."""
    return torch.relu(hidden @ w + b)


@dataclass
class GatedProbe:
    """h <- h + alpha * ReLU(w.h + b) * z on the masked tokens; w, z: (d,), b: scalar."""

    w: Tensor
    b: Tensor
    z: Tensor
    alpha: Tensor | float | Sequence[float] = 1.0
    _params: dict[tuple[torch.dtype, torch.device], tuple[Tensor, Tensor, Tensor, Tensor]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        self.w = torch.as_tensor(self.w).detach().reshape(-1).float()
        self.z = torch.as_tensor(self.z).detach().reshape(-1).float()
        bias = torch.as_tensor(self.b).detach().float()
        if bias.numel() != 1:
            raise VectorError(
                f"A PSR probe bias must be one number, got shape {tuple(bias.shape)}. Fix: pass b as a scalar."
            )
        self.b = bias.reshape(())
        if self.w.numel() == 0 or self.w.shape != self.z.shape:
            raise VectorError(
                f"PSR probe w has shape {tuple(self.w.shape)} but z has {tuple(self.z.shape)}. "
                "Fix: pass w and z of the model's hidden size."
            )
        for name, tensor in (("w", self.w), ("b", self.b), ("z", self.z)):
            check_finite(tensor, f"PSR probe {name}")
        self.alpha = as_alpha(self.alpha)

    @property
    def width(self) -> int:
        return int(self.w.shape[0])

    @property
    def rows(self) -> int | None:
        alpha = self.alpha
        assert isinstance(alpha, Tensor)
        return int(alpha.shape[0]) if alpha.dim() == 1 else None

    def _cast(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        key = (dtype, device)
        if key not in self._params:
            alpha = torch.as_tensor(self.alpha)
            alpha = alpha.reshape(-1, 1, 1) if alpha.dim() == 1 else alpha
            w, b, z, alpha = (t.to(dtype=dtype, device=device) for t in (self.w, self.b, self.z, alpha))
            self._params[key] = (w, b, z, alpha)
        return self._params[key]

    def gate(self, hidden: Tensor) -> Tensor:
        """Per-token strength ReLU(w.h + b), (B, T), before alpha."""
        w, b, _, _ = self._cast(hidden.dtype, hidden.device)
        return probe_gate(hidden, w, b)

    def apply(self, hidden: Tensor, mask: Tensor | None) -> Tensor:
        w, b, z, alpha = self._cast(hidden.dtype, hidden.device)
        edited = hidden + alpha * (probe_gate(hidden, w, b)[..., None] * z)
        if mask is None:
            return edited
        return torch.where(mask[..., None], edited, hidden)

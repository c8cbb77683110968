"""SAEEdit: edit SAE latents of the hidden state and keep everything the SAE does not reconstruct.

With ``f = encode(h)`` and ``f'`` the edited latents, the edit is

    keep_error=True  (default):  h' = h + (decode(f') - decode(f))
                                    = decode(f') + (h - decode(f))      # SAELens's error term kept
    keep_error=False:            h' = decode(f')                        # the SAE's reconstruction only

so an edit that changes no latent (``f' == f``) adds exactly 0 and reproduces ``h`` bit for bit; without
the error term the reconstruction error replaces h (SAELens #231). Per latent ``i`` and strength ``alpha``
(scalar or one per batch row; alpha=1 is the plain edit, 0 changes nothing):

    set    v:  f_i <- f_i + alpha * (v - f_i)      (SAELens/Neuronpedia clamping: f_i := v at alpha 1,
                                                    on every steered token, also where the latent is off)
    add    v:  f_i <- f_i + alpha * v
    scale  v:  f_i <- f_i * (1 + alpha * (v - 1))  (f_i * v at alpha 1)
    ablate  :  f_i <- f_i * (1 - alpha)            (= set 0)

Edits apply in order (two edits of one latent compose); one SAEEdit per layer, several layers compose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from saesteer.errors import ConfigError, SAEError
from saesteer.runtime.operators import as_alpha

EditOp = Literal["set", "add", "scale", "ablate"]
EDIT_OPS: tuple[str, ...] = ("set", "add", "scale", "ablate")


@dataclass(frozen=True)
class LatentEdit:
    """One edit of latent ``latent``: ``op`` with ``value`` (ignored by ablate)."""

    latent: int
    op: EditOp
    value: float = 0.0

    def __post_init__(self) -> None:
        if self.op not in EDIT_OPS:
            raise ConfigError(f"Unknown latent edit {self.op!r}. Fix: use one of {', '.join(EDIT_OPS)}.")
        if not math.isfinite(self.value):
            raise ConfigError(
                f"Latent {self.latent} edit value is {self.value}. Fix: pass a finite number (e.g. 5, not nan)."
            )

    def apply(self, f: Tensor, alpha: Tensor) -> Tensor:
        """The edited column ``f`` (..., ) of this latent at strength ``alpha`` (broadcastable)."""
        if self.op == "set":
            return f + alpha * (self.value - f)
        if self.op == "add":
            return f + alpha * self.value
        if self.op == "scale":
            return f * (1 + alpha * (self.value - 1))
        return f * (1 - alpha)

    def __str__(self) -> str:
        text = {"set": "=", "add": "+=", "scale": "*="}
        return f"{self.latent}=0" if self.op == "ablate" else f"{self.latent}{text[self.op]}{self.value:g}"


def sae_width(sae: Any) -> tuple[int, int]:
    """(d_in, d_sae) of an sae-lens SAE."""
    return int(sae.cfg.d_in), int(sae.cfg.d_sae)


def check_latent(sae: Any, latent: int, what: str = "latent") -> int:
    d_sae = sae_width(sae)[1]
    if not 0 <= int(latent) < d_sae:
        raise SAEError(
            f"Unknown {what} index {latent}: the SAE has {d_sae} latents (0..{d_sae - 1}). "
            "Fix: pick an index below d_sae (saesteer features lists them)."
        )
    return int(latent)


@dataclass
class SAEEdit:
    """Edit SAE latents of the masked tokens (formulas in the module docstring)."""

    sae: Any
    edits: Sequence[LatentEdit]
    keep_error: bool = True
    alpha: Tensor | float | Sequence[float] = 1.0
    _alpha: dict[tuple[torch.dtype, torch.device], Tensor] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.edits = list(self.edits)
        if not self.edits:
            raise ConfigError("An SAE edit needs at least one latent edit. Fix: pass e.g. LatentEdit(123, 'set', 5).")
        for edit in self.edits:
            check_latent(self.sae, edit.latent)
        self.alpha = as_alpha(self.alpha)

    @property
    def width(self) -> int:
        return sae_width(self.sae)[0]

    @property
    def rows(self) -> int | None:
        alpha = self.alpha
        assert isinstance(alpha, Tensor)
        return int(alpha.shape[0]) if alpha.dim() == 1 else None

    def _strength(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        key = (dtype, device)
        if key not in self._alpha:
            alpha = torch.as_tensor(self.alpha)
            self._alpha[key] = (alpha.reshape(-1, 1) if alpha.dim() == 1 else alpha).to(dtype=dtype, device=device)
        return self._alpha[key]

    def edited(self, f: Tensor) -> Tensor:
        """Latents ``f`` (B, T, d_sae) after every edit, in order."""
        alpha = self._strength(f.dtype, f.device)
        out = f.clone()
        for edit in self.edits:
            out[..., edit.latent] = edit.apply(out[..., edit.latent], alpha)
        return out

    def apply(self, hidden: Tensor, mask: Tensor | None) -> Tensor:
        weight = self.sae.W_dec
        h = hidden.to(dtype=weight.dtype, device=weight.device)
        f = self.sae.encode(h)
        edited = self.sae.decode(self.edited(f))
        new = h + (edited - self.sae.decode(f)) if self.keep_error else edited
        new = new.to(dtype=hidden.dtype, device=hidden.device)
        if mask is None:
            return new
        return torch.where(mask[..., None], new, hidden)

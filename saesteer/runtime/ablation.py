"""Directional ablation (Arditi et al. 2024): remove the component of h along a unit direction r.

``AblateDirection`` is the operator, h <- h - scale * (h.r)r on the masked tokens (scale 1 ablates, 0 is a
no-op); it works at block level through ``steer`` like any operator. ``ablate`` is the exact runtime form
of the weight orthogonalisation (``saesteer.interop.orthogonalize_model``): it ablates r at the input of
every decoder block and at the output of every attention and MLP sublayer, so the residual stream and
every sublayer's input never hold r. Block-level hooks alone cannot do that: the MLP of a block reads the
attention output before the block output exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from saesteer.errors import UnknownArchitectureError, VectorError
from saesteer.models.layers import context_length, decoder_layers, hidden_size
from saesteer.runtime.hooks import hidden_of, with_hidden
from saesteer.runtime.operators import as_alpha, as_vectors
from saesteer.runtime.positions import PositionPolicy, parse_positions
from saesteer.runtime.tracker import StepTracker, decoder_owner, end_of_turn_markers

_ATTENTION = ("self_attn", "attn", "attention")
_MLP = ("mlp", "feed_forward")


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


def sublayers(block: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The attention and MLP modules of a decoder block (Llama/Qwen/Mistral/Gemma: self_attn, mlp)."""
    found = [
        next((getattr(block, n) for n in names if isinstance(getattr(block, n, None), nn.Module)), None)
        for names in (_ATTENTION, _MLP)
    ]
    attention, mlp = found
    if attention is None or mlp is None:
        raise UnknownArchitectureError(
            f"Cannot find the attention ({'/'.join(_ATTENTION)}) and MLP ({'/'.join(_MLP)}) modules of "
            f"{type(block).__name__}. Fix: ablate at block level with steer(model, artifact) instead."
        )
    return attention, mlp


@contextmanager
def ablate(
    model: nn.Module,
    direction: Tensor,
    *,
    positions: PositionPolicy | str = "all",
    scale: float | Sequence[float] | Tensor = 1.0,
) -> Iterator[AblateDirection]:
    """Ablate ``direction`` from every block input and every attention/MLP output inside the block.

    With ``positions="all"`` and ``scale=1`` this is exactly what the orthogonalised checkpoint computes.
    Hooks are removed on exit; it composes with ``steer`` (each keeps its own step tracker).
    """
    operator = AblateDirection(direction, as_alpha(scale))
    if operator.width != hidden_size(model):
        raise VectorError(
            f"Ablation direction width {operator.width} does not match the model's hidden size "
            f"{hidden_size(model)}. Fix: use a direction fitted on this model."
        )
    policy = parse_positions(positions)
    tracker = StepTracker(end_of_turn_markers(model), context_length(model))

    def edit(hidden: Tensor) -> Tensor:
        mask = tracker.mask_for(policy)
        if mask is False:
            return hidden
        rows = operator.rows
        if rows is not None and rows != hidden.shape[0]:
            raise VectorError(f"{rows} per-row scales but the batch has {hidden.shape[0]} rows. Fix: one per row.")
        return operator.apply(hidden, mask)

    def before_block(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if args:
            return (edit(args[0]), *args[1:]), kwargs
        kwargs["hidden_states"] = edit(kwargs["hidden_states"])
        return args, kwargs

    def after_sublayer(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        return with_hidden(output, edit(hidden_of(output)))

    handles = [decoder_owner(model).register_forward_pre_hook(tracker, with_kwargs=True)]
    try:
        for block in decoder_layers(model):
            handles.append(block.register_forward_pre_hook(before_block, with_kwargs=True))
            handles.extend(module.register_forward_hook(after_sublayer) for module in sublayers(block))
        yield operator
    finally:
        for handle in handles:
            handle.remove()

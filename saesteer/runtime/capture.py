"""Read hidden states at chosen layers with hooks (removed on exit); stops the forward early."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from saesteer.models.layers import check_layer, decoder_layers
from saesteer.runtime.intervention import HookPoint


class _StopForward(Exception):
    """Raised after the deepest requested layer so the rest of the model is skipped."""


def capture(
    model: nn.Module, batch: dict[str, Tensor], layers: Iterable[int], hook_point: HookPoint = "resid_post"
) -> dict[int, Tensor]:
    """Hidden states (B, T, d) at each layer's block output (or input) for one forward pass."""
    wanted = sorted({check_layer(model, layer) for layer in layers})
    blocks = decoder_layers(model)
    found: dict[int, Tensor] = {}
    last = wanted[-1]

    def make_hook(index: int) -> Any:
        def store(hidden: Tensor) -> None:
            found[index] = hidden.detach()
            if index == last:
                raise _StopForward

        if hook_point == "resid_post":
            return lambda module, args, output: store(output[0] if isinstance(output, tuple) else output)
        return lambda module, args, kwargs: store(args[0] if args else kwargs["hidden_states"])

    handles = []
    try:
        for index in wanted:
            if hook_point == "resid_post":
                handles.append(blocks[index].register_forward_hook(make_hook(index)))
            else:
                handles.append(blocks[index].register_forward_pre_hook(make_hook(index), with_kwargs=True))
        with torch.no_grad(), contextlib.suppress(_StopForward):
            model(**batch, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return found

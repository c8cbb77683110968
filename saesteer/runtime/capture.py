"""Read hidden states at chosen layers with hooks (removed on exit); stops the forward early."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from saesteer.models.layers import check_layer, decoder_layers
from saesteer.runtime.intervention import HookPoint


def add_reader(block: nn.Module, hook_point: HookPoint, read: Callable[[Tensor], None]) -> RemovableHandle:
    """Call ``read(hidden)`` with the block's output (resid_post) or input (resid_pre) on every forward;
    the caller removes the returned handle."""
    if hook_point == "resid_post":
        return block.register_forward_hook(
            lambda m, args, output: read(output[0] if isinstance(output, tuple) else output)
        )
    return block.register_forward_pre_hook(
        lambda m, args, kwargs: read(args[0] if args else kwargs["hidden_states"]), with_kwargs=True
    )


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

    def storer(index: int) -> Callable[[Tensor], None]:
        def store(hidden: Tensor) -> None:
            found[index] = hidden.detach()
            if index == last:
                raise _StopForward

        return store

    handles = []
    try:
        for index in wanted:
            handles.append(add_reader(blocks[index], hook_point, storer(index)))
        with torch.no_grad(), contextlib.suppress(_StopForward):
            model(**batch, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return found

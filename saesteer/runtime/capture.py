"""Read hidden states at chosen layers with hooks (removed on exit); optionally stop the forward early."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from saesteer.models.layers import check_layer, decoder_layers
from saesteer.runtime.hooks import StopForward, hidden_of
from saesteer.runtime.intervention import HookPoint


def add_reader(block: nn.Module, hook_point: HookPoint, read: Callable[[Tensor], None]) -> RemovableHandle:
    """Call ``read(hidden)`` with the block's output (resid_post) or input (resid_pre) on every forward;
    the caller removes the returned handle."""
    if hook_point == "resid_post":
        return block.register_forward_hook(lambda m, args, output: read(hidden_of(output)))
    return block.register_forward_pre_hook(
        lambda m, args, kwargs: read(args[0] if args else kwargs["hidden_states"]), with_kwargs=True
    )


@contextmanager
def reading(
    model: nn.Module,
    layers: Iterable[int],
    read: Callable[[int, Tensor], None],
    *,
    hook_point: HookPoint = "resid_post",
    stop: bool = False,
) -> Iterator[list[int]]:
    """Inside the block every forward calls ``read(layer, hidden)`` at each of ``layers`` (as the hidden states
    are then: readers entered inside a ``steer`` block see the edited states). With ``stop`` the forward ends
    right after the deepest layer: the model call raises ``StopForward``, which ends the block quietly (so
    nothing after that call in the block runs). Yields the sorted, checked layers; hooks are removed on exit."""
    wanted = sorted({check_layer(model, layer) for layer in layers})
    blocks = decoder_layers(model)
    last = wanted[-1] if wanted else None

    def reader(index: int) -> Callable[[Tensor], None]:
        def call(hidden: Tensor) -> None:
            read(index, hidden)
            if stop and index == last:
                raise StopForward

        return call

    handles = []
    try:
        for index in wanted:
            handles.append(add_reader(blocks[index], hook_point, reader(index)))
        yield wanted
    except StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()


def capture(
    model: nn.Module, batch: dict[str, Tensor], layers: Iterable[int], hook_point: HookPoint = "resid_post"
) -> dict[int, Tensor]:
    """Hidden states (B, T, d) at each layer's block output (or input) for one forward pass."""
    found: dict[int, Tensor] = {}

    def store(index: int, hidden: Tensor) -> None:
        found[index] = hidden.detach()

    with torch.no_grad(), reading(model, layers, store, hook_point=hook_point, stop=True):
        model(**batch, use_cache=False)
    return found

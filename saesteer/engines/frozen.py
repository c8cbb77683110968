"""Train steering parameters through a frozen model: no weight gradients, eval mode, restored on every exit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block the model's weights take no gradient and dropout is off; both are put back afterwards,
    also after an exception or Ctrl-C, so only the steering parameters learn and the model leaves as it came."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    try:
        for parameter in trainable:
            parameter.requires_grad_(False)
        model.eval()
        yield model
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)
        model.train(was_training)

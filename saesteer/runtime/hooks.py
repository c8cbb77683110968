"""Hook plumbing shared by steering and reading: one decoder-output unwrap and one early stop."""

from __future__ import annotations

from typing import Any

from torch import Tensor


def hidden_of(output: Any) -> Tensor:
    """The hidden states in a decoder layer's output: the tensor itself (transformers 5) or its first item (4.x)."""
    return output[0] if isinstance(output, tuple) else output


def with_hidden(output: Any, hidden: Tensor) -> Any:
    """``output`` with its hidden states replaced by ``hidden``, in the same form (tensor or tuple)."""
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


class StopForward(Exception):
    """Raised by a reader after the deepest layer a caller needs, so the rest of the model is skipped;
    ``capture.reading`` swallows it at the end of its block."""

"""Per-layer direction sets shared by the interchange formats: normalise what users pass, check what files hold."""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from saesteer.errors import ConfigError, LayerError, SaesteerError, VectorError
from saesteer.vectors import SteeringVector

VectorSource = Mapping[int, Tensor] | SteeringVector | Iterable[SteeringVector]


@dataclass
class LayerVectors:
    """Directions keyed by saesteer's 0-based block-output layer index, plus the file's metadata."""

    directions: dict[int, Tensor]
    metadata: dict[str, str] = field(default_factory=dict)

    def steering_vectors(self, *, model_id: str = "", method: str = "imported") -> list[SteeringVector]:
        """One SteeringVector per layer, on every token (``positions="all"``, as llama.cpp applies them)."""
        return [
            SteeringVector(
                vector=vector.clone(),
                layer=layer,
                positions="all",
                method=method,
                model_id=model_id,
                config=dict(self.metadata),
            )
            for layer, vector in sorted(self.directions.items())
        ]


def as_directions(source: VectorSource, *, scale: float = 1.0) -> dict[int, Tensor]:
    """``{layer: scale * vector}`` as float32 from a mapping or SteeringVector(s), validated for export."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ConfigError(f"scale must be a finite number, got {scale!r}. Fix: pass e.g. scale=1.0.")
    directions: dict[int, Tensor] = {}
    for layer, vector in _pairs(source):
        if not isinstance(layer, int) or isinstance(layer, bool) or layer < 0:
            raise LayerError(f"Layer keys must be non-negative ints, got {layer!r}. Fix: use 0-based block indices.")
        if layer in directions:
            raise ConfigError(f"Two vectors for layer {layer}. Fix: add them first, or export them to separate files.")
        tensor = torch.as_tensor(vector).detach().to("cpu", torch.float64)
        directions[layer] = (tensor * scale).to(torch.float32)
    if not directions:
        raise VectorError("No steering vectors to export. Fix: pass at least one vector.")
    return check_directions(directions, VectorError, "Steering vector", "recompute the vector")


def _pairs(source: VectorSource) -> list[tuple[Any, Any]]:
    if isinstance(source, Mapping):
        return list(source.items())
    items = [source] if isinstance(source, SteeringVector) else list(source)
    for item in items:
        if not isinstance(item, SteeringVector):
            raise ConfigError(
                f"Cannot export {type(item).__name__}. Fix: pass a SteeringVector, a list of them, "
                "or a {layer: tensor} mapping."
            )
        if item.hook_point != "resid_post":
            raise ConfigError(
                f"The vector for layer {item.layer} is applied at {item.hook_point!r}, but these files hold "
                "block-output (resid_post) vectors. Fix: use a resid_post vector (resid_pre of layer L is "
                "resid_post of layer L-1)."
            )
    return [(item.layer, item.vector) for item in items]


def check_directions(
    directions: dict[int, Tensor], error: type[SaesteerError], what: str, fix: str
) -> dict[int, Tensor]:
    """Every vector 1-D, non-empty, finite and of one width; raise ``error`` naming ``what`` otherwise."""
    for layer, vector in directions.items():
        if vector.dim() != 1 or vector.numel() == 0:
            raise error(f"{what} for layer {layer} has shape {tuple(vector.shape)}, not (d,). Fix: {fix}.")
        bad = int((~torch.isfinite(vector)).sum())
        if bad:
            raise error(f"{what} for layer {layer} has {bad} NaN/inf value(s). Fix: {fix}.")
    widths = {layer: int(vector.shape[0]) for layer, vector in directions.items()}
    if len(set(widths.values())) > 1:
        raise error(f"{what}s have different widths by layer {widths}. Fix: {fix} (one model's hidden size).")
    return directions


def canonical_layer(text: str) -> int | None:
    """``int(text)`` when ``text`` is a plain non-negative decimal (no sign, spaces or leading zeros)."""
    if text.isascii() and text.isdigit() and str(int(text)) == text:
        return int(text)
    return None


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; it replaces ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")  # created by the writer (umask applies)
    try:
        yield staging
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def read_or_fail(read: Callable[[], Any], path: Path, kind: str, error: type[SaesteerError]) -> Any:
    """Run a parser on an untrusted file, turning any failure into ``error`` naming the file."""
    if not path.is_file():
        raise error(f"{path} does not exist or is not a file. Fix: pass the path of a {kind} file.")
    try:
        return read()
    except Exception as exc:  # any parser failure means the file is malformed
        raise error(
            f"{path} is not a valid {kind} file ({type(exc).__name__}: {exc}). "
            f"Fix: pass an intact {kind} file (re-export it if it was truncated)."
        ) from exc

"""Plain safetensors files of steering vectors: ``{str(layer): (d,) tensor}``, string metadata allowed.

Keys are saesteer's 0-based block-output (``resid_post``) layer indices written as plain decimals, so any
tool can read the file with ``safetensors.torch.load_file`` and ``{int(k): v for k, v in ...}``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from saesteer.errors import ConfigError, DataError
from saesteer.interop._directions import (
    LayerVectors,
    VectorSource,
    as_directions,
    atomic_path,
    canonical_layer,
    check_directions,
    read_or_fail,
)


def export_layer_tensors(
    vectors: VectorSource,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, str] | None = None,
    scale: float = 1.0,
) -> Path:
    """Write ``vectors`` (SteeringVector(s) or ``{layer: tensor}``) as float32 safetensors, atomically."""
    directions = as_directions(vectors, scale=scale)
    extra = dict(metadata or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise ConfigError("safetensors metadata must map str to str. Fix: convert values with str() or json.dumps.")
    with atomic_path(path) as staging:
        save_file({str(layer): vector.contiguous() for layer, vector in directions.items()}, staging, extra)
    return Path(path)


def import_layer_tensors(path: str | os.PathLike[str]) -> LayerVectors:
    """Read a ``{str(layer): (d,) tensor}`` safetensors file; ``DataError`` on anything malformed."""
    source = Path(path)
    tensors, metadata = read_or_fail(lambda: _read(source), source, "safetensors", DataError)
    if not tensors:
        raise DataError(f"{source} holds no tensors. Fix: export at least one layer's vector.")
    directions = {_layer_of(key, source): _as_float(key, tensor, source) for key, tensor in tensors.items()}
    return LayerVectors(check_directions(directions, DataError, f"{source}: vector", "re-export the file"), metadata)


def _read(source: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    with safe_open(source, framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    return load_file(source), metadata


def _layer_of(key: str, source: Path) -> int:
    layer = canonical_layer(key)
    if layer is None:
        raise DataError(
            f"{source} has a tensor named {key!r}; keys must be 0-based layer indices like '8'. "
            "Fix: save the file as {str(layer): vector}."
        )
    return layer


def _as_float(key: str, tensor: Tensor, source: Path) -> Tensor:
    if not tensor.is_floating_point():
        raise DataError(f"{source}: tensor {key!r} has dtype {tensor.dtype}, not a float. Fix: save float vectors.")
    return tensor.float()

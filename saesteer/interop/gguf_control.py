"""llama.cpp control vectors: export steering vectors to, and import them from, a control-vector GGUF file.

The format is the one repeng's ``ControlVector.export_gguf`` writes: GGUF architecture ``controlvector``,
metadata ``controlvector.model_hint`` (the HF ``model_type``, e.g. ``"llama"``) and
``controlvector.layer_count`` (number of tensors), and one float32 tensor ``direction.{N}`` per layer.
Directions are stored raw: the strength is given at run time (``--control-vector-scaled FILE SCALE``),
unless ``scale`` bakes one in at export.

Layer index convention (checked against the source, llama.cpp master and repeng main):

* llama.cpp ``src/models/llama.cpp`` builds block ``il`` (0-based, ``for il in 0..n_layer-1``) and ends it
  with ``cur = build_cvec(cur, il); cb(cur, "l_out", il)``: the vector for ``il`` is added to the output
  of block ``il``. ``common/common.cpp`` ``common_control_vector_load_one`` parses ``direction.N``, rejects
  ``N == 0`` ("invalid (zero) direction tensor layer index") and stores it at offset ``n_embd * (N - 1)``;
  ``src/llama-adapter.cpp`` ``llama_adapter_cvec::apply`` fills ``tensors[il]`` for ``il >= 1`` from offset
  ``n_embd * (il - 1)`` and has no tensor for layer 0. The two ``-1`` cancel: ``direction.N`` is added to
  the output of 0-based block ``N``.
* repeng ``repeng/control.py`` adds ``directions[i]`` to the output of ``model.model.layers[i]`` and
  ``repeng/extract.py`` writes it as ``direction.{i}`` (trained on ``hidden_states[i + 1]``, the output of
  block ``i``; its default layers skip 0).

saesteer's ``layer`` with hook point ``resid_post`` is the same 0-based block-output index, so the mapping is
the identity: ``SteeringVector(layer=L)`` <-> ``direction.L``. Layer 0 cannot be expressed (llama.cpp rejects
``direction.0``), so export refuses it. Import never executes code: it only parses the GGUF container.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

import gguf
import numpy as np
import torch
from torch import Tensor

from saesteer.errors import ConfigError, DataError, LayerError
from saesteer.interop._directions import (
    LayerVectors,
    VectorSource,
    as_directions,
    atomic_path,
    canonical_layer,
    check_directions,
    read_or_fail,
)

ARCH = "controlvector"
_PREFIX = "direction."
_FLOAT_TYPES = (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F64)
_SCALAR_SIZES = {int(kind): np.dtype(dtype).itemsize for kind, dtype in gguf.GGUFReader.gguf_scalar_to_np.items()}


def export_gguf_control_vector(
    vectors: VectorSource, path: str | os.PathLike[str], *, model_hint: str, scale: float = 1.0
) -> Path:
    """Write ``vectors`` (SteeringVector(s) or ``{layer: tensor}``) as a llama.cpp control vector.

    ``model_hint`` is the HF ``model_type`` (``model.config.model_type``); ``scale`` multiplies every
    direction (1.0 exports them raw, as repeng does). The file is written atomically.
    """
    directions = as_directions(vectors, scale=scale)
    if 0 in directions:
        raise LayerError(
            "llama.cpp cannot apply a control vector to layer 0 (it rejects direction.0). "
            "Fix: steer a layer >= 1, or use saesteer's runtime steering for layer 0."
        )
    if not isinstance(model_hint, str) or not model_hint:
        raise ConfigError("model_hint must be a non-empty string. Fix: pass model_hint=model.config.model_type.")
    with atomic_path(path) as staging:
        writer = gguf.GGUFWriter(staging, ARCH)
        writer.add_string(f"{ARCH}.model_hint", model_hint)
        writer.add_uint32(f"{ARCH}.layer_count", len(directions))
        for layer, vector in sorted(directions.items()):
            writer.add_tensor(f"{_PREFIX}{layer}", vector.numpy())
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return Path(path)


def import_gguf_control_vector(path: str | os.PathLike[str]) -> LayerVectors:
    """Read a control-vector GGUF into ``LayerVectors`` (``directions[L]`` = ``direction.L``, float32).

    Raises ``DataError`` for anything but a well-formed control vector: not GGUF, truncated, another
    architecture, tensors other than ``direction.N`` (N >= 1), non-float or non-1-D tensors, mixed
    widths, NaN/inf values.
    """
    source = Path(path)
    reader = read_or_fail(lambda: _open(source), source, "GGUF control-vector", DataError)
    arch = _string_field(reader, "general.architecture", source)
    if arch != ARCH:
        raise DataError(
            f"{source} is a GGUF file of architecture {arch!r}, not a control vector ({ARCH!r}). "
            "Fix: pass a control-vector GGUF (e.g. written by repeng or saesteer), not a model file."
        )
    raw = {_layer_of(tensor.name, source): _tensor_data(tensor, source) for tensor in reader.tensors}
    if not raw:
        raise DataError(f"{source} holds no direction tensors. Fix: re-export the control vector.")
    directions = check_directions(raw, DataError, f"{source}: direction", "re-export the control vector")
    hint = _string_field(reader, f"{ARCH}.model_hint", source, required=False)
    return LayerVectors(directions, {"model_hint": hint} if hint else {})


def _open(source: Path) -> gguf.GGUFReader:
    _check_lengths(source)
    return gguf.GGUFReader(source)


class _Cursor:
    """Bounds-checked reads over a byte buffer."""

    def __init__(self, data: mmap.mmap, order: str) -> None:
        self.data, self.order, self.offset = data, order, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(self.order + fmt, self.data, self.offset)  # struct.error past the end
        self.offset += struct.calcsize(fmt)
        return int(value)

    def skip(self, size: int) -> None:
        if size > len(self.data) - self.offset:
            raise ValueError(f"a metadata value at byte {self.offset} runs past the end of the file")
        self.offset += size


def _check_lengths(source: Path) -> None:
    """Reject metadata lengths past the end of the file (GGUFReader would loop over them for ever)."""
    with source.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"GGUF":
            raise ValueError("no GGUF magic number")
        order = "<" if struct.unpack_from("<I", data, 4)[0] & 0xFFFF else ">"
        cursor = _Cursor(data, order)
        cursor.skip(16)
        for _ in range(cursor.take("Q")):
            cursor.skip(cursor.take("Q"))
            _skip_value(cursor, cursor.take("I"))


def _skip_value(cursor: _Cursor, kind: int) -> None:
    if kind in _SCALAR_SIZES:
        cursor.skip(_SCALAR_SIZES[kind])
    elif kind == gguf.GGUFValueType.STRING:
        cursor.skip(cursor.take("Q"))
    elif kind == gguf.GGUFValueType.ARRAY:
        item, count = cursor.take("I"), cursor.take("Q")
        if item in _SCALAR_SIZES:
            cursor.skip(count * _SCALAR_SIZES[item])
        else:
            cursor.skip(0 if count <= len(cursor.data) else count)  # each string/array item takes >= 8 bytes
            for _ in range(count):
                _skip_value(cursor, item)
    else:
        raise ValueError(f"unknown metadata value type {kind}")


def _string_field(reader: gguf.GGUFReader, key: str, source: Path, *, required: bool = True) -> str:
    field = reader.get_field(key)
    if field is None:
        if required:
            raise DataError(f"{source} has no {key!r} metadata. Fix: pass a control-vector GGUF file.")
        return ""
    if field.types != [gguf.GGUFValueType.STRING]:
        raise DataError(f"{source}: metadata {key!r} is not a string. Fix: re-export the control vector.")
    try:
        return str(field.contents())
    except UnicodeDecodeError as exc:
        raise DataError(f"{source}: metadata {key!r} is not UTF-8. Fix: re-export the control vector.") from exc


def _layer_of(name: str, source: Path) -> int:
    layer = canonical_layer(name[len(_PREFIX) :]) if name.startswith(_PREFIX) else None
    if layer is None:
        raise DataError(
            f"{source} has a tensor {name!r}; a control vector holds only direction.N tensors. "
            "Fix: pass a control-vector GGUF, not a model or adapter file."
        )
    if layer == 0:
        raise DataError(f"{source} has direction.0, which llama.cpp rejects. Fix: re-export without layer 0.")
    return layer


def _tensor_data(tensor: gguf.ReaderTensor, source: Path) -> Tensor:
    if tensor.tensor_type not in _FLOAT_TYPES:
        raise DataError(
            f"{source}: {tensor.name} has type {tensor.tensor_type.name}, not a float type. "
            "Fix: re-export the control vector as float32."
        )
    return torch.from_numpy(np.array(tensor.data, dtype=np.float32))

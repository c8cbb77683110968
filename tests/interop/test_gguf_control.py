"""llama.cpp control-vector GGUF: exact round trip, the repeng/llama.cpp layout, and malformed files rejected."""

from __future__ import annotations

import os
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from saesteer.errors import DataError, LayerError
from saesteer.interop import export_gguf_control_vector, import_gguf_control_vector
from saesteer.vectors import SteeringVector

LAYERS = (3, 8, 29)
WIDTH = 576


@pytest.fixture
def vectors() -> list[SteeringVector]:
    generator = torch.Generator().manual_seed(0)
    return [
        SteeringVector(torch.randn(WIDTH, generator=generator) * (i + 1), layer=layer) for i, layer in enumerate(LAYERS)
    ]


@pytest.fixture
def exported(tmp_path: Path, vectors: list[SteeringVector]) -> Path:
    return export_gguf_control_vector(vectors, tmp_path / "cv.gguf", model_hint="llama")


def _write(path: Path, arch: str, tensors: dict[str, np.ndarray]) -> Path:
    writer = gguf.GGUFWriter(path, arch)
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_round_trip_is_exact_and_keeps_layers(exported: Path, vectors: list[SteeringVector]):
    loaded = import_gguf_control_vector(exported)
    assert sorted(loaded.directions) == list(LAYERS)
    for vector in vectors:
        assert loaded.directions[vector.layer].dtype == torch.float32
        assert torch.equal(loaded.directions[vector.layer], vector.vector)
    assert loaded.metadata == {"model_hint": "llama"}
    again = loaded.steering_vectors(model_id="smollm2")
    assert [(v.layer, v.positions, v.hook_point) for v in again] == [(layer, "all", "resid_post") for layer in LAYERS]
    assert all(torch.equal(a.vector, b.vector) for a, b in zip(again, vectors, strict=True))


def test_file_has_the_repeng_llama_cpp_layout(exported: Path, vectors: list[SteeringVector]):
    reader = gguf.GGUFReader(exported)
    field = reader.get_field("general.architecture")
    assert field is not None and field.contents() == "controlvector"
    hint, count = reader.get_field("controlvector.model_hint"), reader.get_field("controlvector.layer_count")
    assert hint is not None and hint.contents() == "llama"
    assert count is not None and count.contents() == len(LAYERS)
    assert [t.name for t in reader.tensors] == [f"direction.{layer}" for layer in LAYERS]
    for tensor, vector in zip(reader.tensors, vectors, strict=True):
        assert tensor.tensor_type == gguf.GGMLQuantizationType.F32
        np.testing.assert_array_equal(tensor.data, vector.vector.numpy())


def test_mapping_input_and_scale(tmp_path: Path):
    direction = torch.linspace(-1, 1, 8)
    path = export_gguf_control_vector({4: direction}, tmp_path / "scaled.gguf", model_hint="gpt2", scale=-2.5)
    assert torch.equal(import_gguf_control_vector(path).directions[4], direction * -2.5)


def test_layer_zero_is_refused_on_export(tmp_path: Path):
    with pytest.raises(LayerError, match=r"direction\.0"):
        export_gguf_control_vector({0: torch.ones(4)}, tmp_path / "zero.gguf", model_hint="llama")
    assert not list(tmp_path.iterdir())


def test_random_bytes_are_rejected(tmp_path: Path):
    path = tmp_path / "noise.gguf"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(DataError, match="not a valid GGUF"):
        import_gguf_control_vector(path)


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.99])
def test_truncated_export_is_rejected(tmp_path: Path, exported: Path, keep: float):
    data = exported.read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[: int(len(data) * keep)] if keep else b"")
    with pytest.raises(DataError, match="Fix:"):
        import_gguf_control_vector(path)


def test_metadata_array_longer_than_the_file_is_rejected_not_looped_over(tmp_path: Path):
    header = b"GGUF" + np.array([3], "<u4").tobytes() + np.array([0, 1, 1], "<u8").tobytes() + b"k"
    path = tmp_path / "evil.gguf"
    path.write_bytes(header + np.array([9, 0], "<u4").tobytes() + np.array([2**40], "<u8").tobytes())
    with pytest.raises(DataError, match="past the end"):
        import_gguf_control_vector(path)


def test_model_gguf_of_another_arch_is_rejected(tmp_path: Path):
    path = _write(tmp_path / "model.gguf", "llama", {"token_embd.weight": np.ones((4, 8), np.float32)})
    with pytest.raises(DataError, match="architecture 'llama'"):
        import_gguf_control_vector(path)


@pytest.mark.parametrize(
    ("tensors", "match"),
    [
        ({"direction.2": np.array([1.0, np.nan, 0.0], np.float32)}, "NaN/inf"),
        ({"direction.2": np.array([1.0, np.inf, 0.0], np.float32)}, "NaN/inf"),
        ({"direction.2": np.ones(4, np.float32), "direction.3": np.ones(5, np.float32)}, "different widths"),
        ({"direction.2": np.ones(4, np.int32)}, "not a float"),
        ({"direction.2": np.ones((2, 4), np.float32)}, r"not \(d,\)"),
        ({"direction.0": np.ones(4, np.float32)}, r"direction\.0"),
        ({"direction.x": np.ones(4, np.float32)}, "only direction.N"),
        ({"blk.0.attn_q.weight": np.ones(4, np.float32)}, "only direction.N"),
        ({}, "no direction tensors"),
    ],
)
def test_bad_tensors_are_rejected(tmp_path: Path, tensors: dict[str, np.ndarray], match: str):
    path = _write(tmp_path / "bad.gguf", "controlvector", tensors)
    with pytest.raises(DataError, match=match):
        import_gguf_control_vector(path)


def test_missing_file_is_a_data_error(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        import_gguf_control_vector(tmp_path / "absent.gguf")

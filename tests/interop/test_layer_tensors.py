"""Plain safetensors vector files: exact round trip, readable without saesteer, malformed files rejected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from saesteer.errors import ConfigError, DataError, VectorError
from saesteer.interop import export_layer_tensors, import_layer_tensors
from saesteer.vectors import SteeringVector


@pytest.fixture
def vectors() -> list[SteeringVector]:
    generator = torch.Generator().manual_seed(1)
    return [SteeringVector(torch.randn(64, generator=generator), layer=layer) for layer in (0, 7, 12)]


def test_round_trip_is_exact_with_metadata(tmp_path: Path, vectors: list[SteeringVector]):
    path = export_layer_tensors(vectors, tmp_path / "v.safetensors", metadata={"source": "caa"})
    loaded = import_layer_tensors(path)
    assert sorted(loaded.directions) == [0, 7, 12]
    assert all(torch.equal(loaded.directions[v.layer], v.vector) for v in vectors)
    assert loaded.metadata == {"source": "caa"}
    assert [v.layer for v in loaded.steering_vectors()] == [0, 7, 12]


def test_file_is_plain_safetensors(tmp_path: Path, vectors: list[SteeringVector]):
    path = export_layer_tensors(vectors, tmp_path / "v.safetensors", scale=2.0)
    raw = load_file(path)
    assert sorted(raw) == ["0", "12", "7"]
    assert all(raw[str(v.layer)].dtype == torch.float32 for v in vectors)
    assert torch.equal(raw["7"], vectors[1].vector * 2.0)


def test_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path: Path, vectors: list[SteeringVector]):
    path = tmp_path / "v.safetensors"
    export_layer_tensors(vectors, path)
    export_layer_tensors({3: torch.ones(64)}, path)
    assert sorted(import_layer_tensors(path).directions) == [3]
    assert os.listdir(tmp_path) == ["v.safetensors"]


@pytest.mark.parametrize(
    ("tensors", "match"),
    [
        ({"layer8": torch.ones(4)}, "keys must be 0-based layer indices"),
        ({"-1": torch.ones(4)}, "keys must be 0-based layer indices"),
        ({"08": torch.ones(4)}, "keys must be 0-based layer indices"),
        ({"3": torch.ones(2, 4)}, r"not \(d,\)"),
        ({"3": torch.tensor([1.0, float("nan")])}, "NaN/inf"),
        ({"3": torch.ones(4), "4": torch.ones(5)}, "different widths"),
        ({"3": torch.ones(4, dtype=torch.int64)}, "not a float"),
        ({}, "holds no tensors"),
    ],
)
def test_bad_files_are_rejected(tmp_path: Path, tensors: dict[str, torch.Tensor], match: str):
    path = tmp_path / "bad.safetensors"
    save_file(tensors, path)
    with pytest.raises(DataError, match=match):
        import_layer_tensors(path)


def test_garbage_and_truncated_files_are_rejected(tmp_path: Path, vectors: list[SteeringVector]):
    good = export_layer_tensors(vectors, tmp_path / "v.safetensors").read_bytes()
    for name, data in {"noise": os.urandom(512), "cut": good[: len(good) // 2], "empty": b""}.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        with pytest.raises(DataError, match="not a valid safetensors"):
            import_layer_tensors(path)


def test_bad_export_inputs(tmp_path: Path):
    with pytest.raises(VectorError, match="NaN/inf"):
        export_layer_tensors({1: torch.tensor([1.0, float("inf")])}, tmp_path / "x.safetensors")
    with pytest.raises(ConfigError, match="metadata"):
        export_layer_tensors({1: torch.ones(3)}, tmp_path / "x.safetensors", metadata={"n": 3})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="Cannot export Tensor"):
        export_layer_tensors(torch.ones(2, 3), tmp_path / "x.safetensors")  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())

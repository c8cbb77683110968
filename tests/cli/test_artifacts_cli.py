"""``generate`` and ``vector export|fold`` on every kind of stored artifact, and on a damaged store."""

from __future__ import annotations

import pytest
import torch

from saesteer.cli.main import main
from saesteer.engines.corrsteer import CorrSteerArtifact, SelectedFeature
from saesteer.engines.prosv import ProsvArtifact
from saesteer.engines.psr import PSRArtifact
from saesteer.interop import import_layer_tensors
from saesteer.store import Store
from saesteer.vectors import SteeringVector

MODEL = "smollm2-135m-instruct"
WIDTH = 576


def _row(seed: int) -> torch.Tensor:
    return torch.randn(WIDTH, generator=torch.Generator().manual_seed(seed))


def _corrsteer(layers: list[int]) -> CorrSteerArtifact:
    features = [SelectedFeature(layer, 3, 0.5, 2.0) for layer in layers]
    rows = {(layer, 3): _row(layer) for layer in layers}
    return CorrSteerArtifact(features, rows, model_id=MODEL, config={"task": "capitals"})


@pytest.fixture
def store(tmp_path) -> str:
    """A store holding one artifact of each kind."""
    found = Store(tmp_path / "store")
    found.save("caa", SteeringVector(_row(0), layer=8, model_id=MODEL))
    found.save("cs1", _corrsteer([8]))
    found.save("cs2", _corrsteer([6, 8]))
    found.save("pro", ProsvArtifact(_row(1), factor=2.0, layer=8, model_id=MODEL))
    found.save("psr", PSRArtifact({8: (_row(2), torch.zeros(1), _row(3))}, alpha=1.5, model_id=MODEL))
    found.save("narrow", SteeringVector(torch.ones(100), layer=8, model_id="other"))
    return str(tmp_path / "store")


@pytest.fixture
def loaded(monkeypatch, smollm2):
    """The CLI's load_model answers with the session's real model (no second load)."""
    import saesteer.models

    monkeypatch.setattr(saesteer.models, "load_model", lambda name: smollm2)
    return smollm2


def _fails_with_a_fix(capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert "error:" in out and message in out and "Fix:" in out and "Traceback" not in out


@pytest.mark.parametrize("name", ["caa", "cs1", "pro"])
def test_export_writes_any_single_vector_artifact(store, tmp_path, name):
    out = tmp_path / f"{name}.safetensors"
    assert main(["vector", "export", name, "--store", store, "--out", str(out)]) == 0
    layer, vector = Store(store).load(name).additive_vector()
    assert torch.equal(import_layer_tensors(out).directions[layer], vector)


def test_export_of_two_artifacts_writes_one_file_with_both_layers(store, tmp_path):
    Store(store).save("caa6", SteeringVector(_row(5), layer=6, model_id=MODEL))
    out = tmp_path / "both.gguf"
    assert main(["vector", "export", "caa", "caa6", "--store", store, "--out", str(out)]) == 0
    assert main(["vector", "import", str(out), "--store", str(tmp_path / "b"), "--name", "both"]) == 0
    assert {r.name for r in Store(tmp_path / "b").find()} == {"both-l6", "both-l8"}


@pytest.mark.parametrize(("name", "method"), [("cs2", "corrsteer"), ("psr", "psr")])
def test_export_refuses_artifacts_that_are_not_one_vector(store, tmp_path, capsys, name, method):
    argv = ["vector", "export", name, "--store", store, "--out", str(tmp_path / "x.gguf")]
    _fails_with_a_fix(capsys, argv, f"({method}, layers")
    assert not (tmp_path / "x.gguf").exists()


def test_fold_refuses_a_probe_with_a_fix(store, tmp_path, capsys, loaded):
    argv = ["vector", "fold", "psr", "--store", store, "--model", MODEL, "--alpha", "1", "--out", str(tmp_path / "f")]
    _fails_with_a_fix(capsys, argv, "not one constant vector")
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize(("name", "title"), [("cs2", "corrsteer, layers 6, 8"), ("psr", "psr, layer 8")])
def test_generate_steers_with_any_artifact(store, capsys, loaded, name, title):
    argv = ["generate", "--model", MODEL, "--store", store, "--vector", name, "--max-new-tokens", "3", "Hi there."]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert title in out and "unsteered" in out and "alpha +4" in out


def test_generate_with_an_artifact_of_another_width_is_a_typed_error(store, capsys, loaded):
    _fails_with_a_fix(
        capsys, ["generate", "--model", MODEL, "--store", store, "--vector", "narrow", "hi"], "hidden size is 576"
    )


def test_damaged_blobs_end_in_a_fix(store, tmp_path, capsys, loaded):
    record = Store(store).get("cs2")
    (Store(store).root / record.blob).write_bytes(b"not safetensors")
    damaged = "does not match its checksum"
    _fails_with_a_fix(capsys, ["generate", "--model", MODEL, "--store", store, "--vector", "cs2", "hi"], damaged)
    _fails_with_a_fix(capsys, ["vector", "export", "cs2", "--store", store, "--out", str(tmp_path / "x.gguf")], damaged)

from __future__ import annotations

import sqlite3

import pytest
import torch

from saesteer.errors import StoreError
from saesteer.store import Store
from saesteer.vectors import SteeringVector


def vector(value: float = 1.0, layer: int = 8) -> SteeringVector:
    return SteeringVector(
        vector=torch.full((16,), value),
        layer=layer,
        model_id="toy",
        config={"read": "mean"},
        metrics={"norm": 4.0 * value},
    )


def test_round_trip_latest_by_name_and_queries(tmp_path):
    store = Store(tmp_path / "store")
    first = store.save_vector("sent", vector(1.0), data_hash="abc")
    second = store.save_vector("sent", vector(2.0))
    store.save_vector("other", vector(3.0, layer=4))
    assert store.get("sent").id == second.id
    loaded = store.load_vector("sent")
    assert torch.equal(loaded.vector, torch.full((16,), 2.0))
    assert loaded.layer == 8 and loaded.positions == "after_prompt" and loaded.config == {"read": "mean"}
    assert store.get(first.id).data_hash == "abc"
    assert [r.name for r in store.find(kind="vector", model_id="toy", layer=4)] == ["other"]
    reopened = Store(tmp_path / "store")
    assert len(reopened.find(kind="vector")) == 3


def test_delete_removes_row_and_blob(tmp_path):
    store = Store(tmp_path)
    record = store.save_vector("v", vector())
    store.delete("v")
    assert not (tmp_path / record.blob).exists()
    with pytest.raises(StoreError, match="No record named 'v'"):
        store.get("v")


def test_corrupted_blob_is_detected(tmp_path):
    store = Store(tmp_path)
    record = store.save_vector("v", vector())
    blob = tmp_path / record.blob
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="checksum"):
        store.load_vector("v")
    blob.unlink()
    with pytest.raises(StoreError, match="missing"):
        store.load_vector("v")


def test_failed_catalog_write_leaves_no_blob(tmp_path, monkeypatch):
    store = Store(tmp_path)

    def fail(record):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store.catalog, "insert", fail)
    with pytest.raises(sqlite3.OperationalError):
        store.save_vector("v", vector())
    assert list((tmp_path / "blobs").iterdir()) == []


def test_bad_store_paths(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        Store(afile)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "catalog.sqlite").write_text("not a database")
    with pytest.raises(StoreError, match="SQLite"):
        Store(bad)
    with pytest.raises(StoreError, match="kind"):
        Store(tmp_path / "ok").put("weights", "x", {"t": torch.ones(1)})


def test_every_record_kind_round_trips(tmp_path, smollm2_sae):
    from saesteer.stats import FeatureStats

    store = Store(tmp_path)
    sae, metrics = smollm2_sae
    store.save_sae("sae-l8", sae, model_id="smollm2-135m-instruct", layer=8, metrics=metrics)
    loaded_sae = store.load_sae("sae-l8")
    probe = torch.randn(8, 576)
    torch.testing.assert_close(loaded_sae.encode(probe * 20), sae.encode(probe * 20))
    assert store.find_sae("smollm2-135m-instruct", 8).name == "sae-l8"
    with pytest.raises(StoreError, match="No SAE"):
        store.find_sae("smollm2-135m-instruct", 9)

    stats = FeatureStats.empty([3, 8], 5)
    x = torch.rand(40, 2, 5)
    y = (x[:, 1, 2] > 0.5).double()
    stats.update(x, y)
    store.save_feature_stats("mmlu-stats", stats, model_id="m", task="mmlu")
    again = store.load_feature_stats("mmlu-stats")
    torch.testing.assert_close(again.pearson(), stats.pearson())
    assert store.top_features("mmlu", "m", 8, k=1)[0][0] == 2
    with pytest.raises(StoreError, match="No feature statistics"):
        store.top_features("harmbench", "m", 8)

    store.put("probe", "psr", {"w": torch.ones(576), "b": torch.zeros(1), "z": torch.ones(576)}, layer=5, method="psr")
    store.put("eval_result", "bench-1", {"scores": torch.tensor([0.5, 0.7])}, metrics={"accuracy": 0.6})
    assert set(store.tensors(store.get("psr"))) == {"w", "b", "z"}
    assert store.get("bench-1").metrics == {"accuracy": 0.6}
    assert {r.kind for r in store.find()} == {"sae", "feature_stats", "probe", "eval_result"}
    assert store.verify() == []


def test_export_import_bundle(tmp_path):
    source = Store(tmp_path / "a")
    source.save_vector("v1", vector(1.0))
    source.save_vector("v2", vector(2.0))
    exported = source.export(["v2"], tmp_path / "bundle")
    target = Store(tmp_path / "b")
    assert [r.id for r in target.import_bundle(tmp_path / "bundle")] == [exported[0].id]
    assert torch.equal(target.load_vector("v2").vector, torch.full((16,), 2.0))
    assert target.import_bundle(tmp_path / "bundle") == []  # known ids are skipped
    blob = next((tmp_path / "bundle" / "blobs").iterdir())
    blob.write_bytes(blob.read_bytes()[:-10])
    with pytest.raises(StoreError, match="checksum"):
        Store(tmp_path / "c").import_bundle(tmp_path / "bundle")
    with pytest.raises(StoreError, match=r"records\.jsonl"):
        target.import_bundle(tmp_path)


def test_truncated_or_foreign_blob_is_a_clear_error(tmp_path):
    from saesteer.store.blobs import read_blob

    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(StoreError, match="not a valid safetensors"):
        read_blob(path)
    path.write_bytes(b"\x00")
    with pytest.raises(StoreError, match="not a valid safetensors"):
        read_blob(path)


def test_no_pickle_anywhere_in_the_package():
    from pathlib import Path

    import saesteer

    root = Path(saesteer.__file__).parent
    for source in root.rglob("*.py"):
        text = source.read_text()
        assert "import pickle" not in text and "pickle.load" not in text, source
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{source}: {line}"


def test_a_foreign_sqlite_database_is_a_store_error(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "catalog.sqlite") as db:
        db.execute("CREATE TABLE records (id TEXT, colour TEXT)")
    with pytest.raises(StoreError, match="catalog"):
        Store(tmp_path).find()

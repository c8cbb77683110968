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

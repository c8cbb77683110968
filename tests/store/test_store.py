from __future__ import annotations

import json
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
    first = store.save("sent", vector(1.0), data_hash="abc")
    second = store.save("sent", vector(2.0))
    store.save("other", vector(3.0, layer=4))
    assert store.get("sent").id == second.id
    loaded = store.load("sent")
    assert torch.equal(loaded.vector, torch.full((16,), 2.0))
    assert loaded.layer == 8 and loaded.positions == "after_prompt" and loaded.config == {"read": "mean"}
    assert store.get(first.id).data_hash == "abc"
    assert [r.name for r in store.find(kind="vector", model_id="toy", layer=4)] == ["other"]
    reopened = Store(tmp_path / "store")
    assert len(reopened.find(kind="vector")) == 3


def test_delete_removes_row_and_blob(tmp_path):
    store = Store(tmp_path)
    record = store.save("v", vector())
    store.delete("v")
    assert not (tmp_path / record.blob).exists()
    with pytest.raises(StoreError, match="No record named 'v'"):
        store.get("v")


def test_corrupted_blob_is_detected(tmp_path):
    store = Store(tmp_path)
    record = store.save("v", vector())
    blob = tmp_path / record.blob
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="checksum"):
        store.load("v")
    blob.unlink()
    with pytest.raises(StoreError, match="missing"):
        store.load("v")


@pytest.mark.parametrize("error", [StoreError("disk full"), KeyboardInterrupt()])
def test_failed_catalog_write_leaves_no_blob(tmp_path, monkeypatch, error):
    store = Store(tmp_path)

    def fail(record):
        raise error

    monkeypatch.setattr(store.catalog, "insert", fail)
    with pytest.raises(type(error)):
        store.save("v", vector())
    assert list((tmp_path / "blobs").iterdir()) == []


def test_sqlite_errors_inside_a_transaction_are_store_errors(tmp_path):
    store = Store(tmp_path)
    record = store.save("v", vector())
    with pytest.raises(StoreError, match=r"catalog .* is not usable: UNIQUE constraint failed"):
        store.catalog.insert(record)  # same id twice
    assert [r.id for r in store.find()] == [record.id]


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
    source.save("v1", vector(1.0))
    source.save("v2", vector(2.0))
    exported = source.export(["v2"], tmp_path / "bundle")
    target = Store(tmp_path / "b")
    assert [r.id for r in target.import_bundle(tmp_path / "bundle")] == [exported[0].id]
    assert torch.equal(target.load("v2").vector, torch.full((16,), 2.0))
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
    with sqlite3.connect(tmp_path / "catalog.sqlite") as db:
        db.execute("CREATE TABLE records (id TEXT, colour TEXT)")
    with pytest.raises(StoreError, match="catalog"):
        Store(tmp_path).find()


def test_save_load_round_trips_a_steering_vector_exactly(tmp_path):
    store = Store(tmp_path)
    original = SteeringVector(
        vector=torch.randn(16), layer=5, hook_point="resid_pre", positions="all", method="caa", model_id="toy",
        config={"read": "last", "n_pairs": 7}, metrics={"norm": 1.5, "nan": float("nan")},
    )  # fmt: skip
    record = store.save("v", original, data_hash="d1", model_fingerprint="f1")
    assert (record.kind, record.layer, record.method, record.data_hash) == ("vector", 5, "caa", "d1")
    loaded = store.load("v")
    assert isinstance(loaded, SteeringVector)
    assert torch.equal(loaded.vector, original.vector)
    assert (loaded.layer, loaded.hook_point, loaded.positions, loaded.model_id) == (5, "resid_pre", "all", "toy")
    assert loaded.config == {"read": "last", "n_pairs": 7} and loaded.metrics["norm"] == 1.5
    assert store.verify() == []


def test_a_record_of_an_unregistered_method_is_a_typed_error(tmp_path):
    store = Store(tmp_path)
    store.put("vector", "alien", {"vector": torch.ones(16)}, layer=3, method="no-such-method")
    store.put("eval_result", "scores", {"scores": torch.ones(2)})
    with pytest.raises(StoreError, match=r"no-such-method.*no registered method.*Fix:"):
        store.load("alien")
    with pytest.raises(StoreError, match=r"eval_result.*Fix:"):
        store.load("scores")


def test_load_with_a_model_checks_width_and_layer(tmp_path, smollm2):
    from saesteer.errors import LayerError, VectorError

    model, _ = smollm2
    store = Store(tmp_path)
    store.save("narrow", SteeringVector(vector=torch.ones(16), layer=3, model_id="toy"))
    store.save("deep", SteeringVector(vector=torch.ones(576), layer=99))
    store.save("fits", SteeringVector(vector=torch.ones(576), layer=8))
    with pytest.raises(VectorError, match=r"width 16 but the model's hidden size is 576.*Fix:.*toy"):
        store.load("narrow", model)
    with pytest.raises(LayerError, match="99"):
        store.load("deep", model)
    assert store.load("fits", model).layer == 8


def test_an_edited_catalog_row_is_caught_by_its_blob(tmp_path):
    store = Store(tmp_path)
    store.save("v", vector(layer=8))
    with sqlite3.connect(tmp_path / "catalog.sqlite") as db:
        db.execute("UPDATE records SET layer = 9")
    with pytest.raises(StoreError, match=r"disagrees with the provenance its blob.*Fix:"):
        store.load("v")
    assert len(store.verify()) == 1


def test_rm_removes_a_malformed_row_and_gc_keeps_its_blob_until_then(tmp_path):
    store = Store(tmp_path)
    bad = store.save("bad", vector())
    good = store.save("good", vector(2.0))
    with sqlite3.connect(tmp_path / "catalog.sqlite") as db:
        db.execute("UPDATE records SET config = '{oops' WHERE name = 'bad'")
    with pytest.raises(StoreError, match=r"malformed: config is not valid JSON.*Fix: remove it"):
        store.find()
    assert store.gc() == []  # the malformed row still owns its blob
    assert store.delete("bad").id == bad.id
    assert not (tmp_path / bad.blob).exists()
    assert [r.id for r in store.find()] == [good.id] and store.verify() == []


def test_a_bundle_cannot_write_outside_the_store(tmp_path):
    source = Store(tmp_path / "a")
    source.save("v", vector())
    source.export(None, tmp_path / "bundle")
    listing = tmp_path / "bundle" / "records.jsonl"
    row = json.loads(listing.read_text())
    row["blob"] = f"../../{row['id']}.safetensors"
    listing.write_text(json.dumps(row) + "\n")
    target = Store(tmp_path / "b")
    with pytest.raises(StoreError, match=r"blob path.*Fix: re-export"):
        target.import_bundle(tmp_path / "bundle")
    assert target.find() == [] and not (tmp_path / f"{row['id']}.safetensors").exists()


def test_a_failing_bundle_import_adds_nothing(tmp_path):
    source = Store(tmp_path / "a")
    source.save("v1", vector(1.0))
    source.save("v2", vector(2.0))
    source.export(None, tmp_path / "bundle")
    blobs = sorted((tmp_path / "bundle" / "blobs").iterdir())
    blobs[-1].write_bytes(b"garbage")
    target = Store(tmp_path / "b")
    with pytest.raises(StoreError, match="checksum"):
        target.import_bundle(tmp_path / "bundle")
    assert target.find() == [] and list((tmp_path / "b" / "blobs").iterdir()) == []


def test_a_fresh_store_never_has_a_half_made_catalog(tmp_path):
    Store(tmp_path / "s")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["blobs", "catalog.sqlite"]
    with sqlite3.connect(tmp_path / "s" / "catalog.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

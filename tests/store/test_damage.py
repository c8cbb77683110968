"""Every way a disk can damage a store x every command that reads one: a typed one-line error with a fix.

A healthy store is built once and copied per test; each damage is applied to the copy. Catalog-level
damage stops every command (``Store(root)`` refuses the store). Record-level damage (a blob missing,
altered, truncated, a link, a directory, a FIFO; a malformed or edited row) stops every command that
reads the record, while ``store ls``/``show`` (catalog views) and ``store rm`` (the fix) still work
where the row itself parses. Commands that load a model get a stand-in: the store error must come
before the model is used.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from saesteer.cli.main import main
from saesteer.errors import StoreError
from saesteer.stats import FeatureStats
from saesteer.store import Store
from saesteer.vectors import SteeringVector

WIDTH = 576  # SmolLM2's hidden size
SENT = torch.linspace(-1.0, 1.0, WIDTH)


def _build(root: Path) -> None:
    store = Store(root)
    store.save("sent", SteeringVector(vector=SENT, layer=8, model_id="smollm2-135m-instruct"))
    stats = FeatureStats.empty([8], 6)
    x = torch.rand(32, 1, 6, generator=torch.Generator().manual_seed(0))
    stats.update(x, (x[:, 0, 2] > 0.5).double())
    store.save_feature_stats("caps-stats", stats, model_id="smollm2-135m-instruct", task="capitals")
    store.put(
        "vector",
        "caps",
        {"vector": torch.ones(WIDTH)},
        method="corrsteer",
        layer=8,
        config={"task": "capitals", "features": [{"layer": 8, "feature": 2}], "ranked": {"8": [[2, 0.6]]}},
    )


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("healthy") / "store"
    _build(root)
    return root


@pytest.fixture
def root(healthy: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(healthy, copy)
    return copy


def _blobs(root: Path) -> list[Path]:
    return sorted((root / "blobs").glob("*.safetensors"))


def _elsewhere(root: Path) -> Path:
    folder = root.parent / "elsewhere"
    folder.mkdir(exist_ok=True)
    return folder


def _garbage(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def catalog_garbage(root: Path) -> None:
    (root / "catalog.sqlite").write_bytes(_garbage(8192))


def catalog_empty(root: Path) -> None:
    (root / "catalog.sqlite").write_bytes(b"")


def catalog_truncated(root: Path) -> None:
    path = root / "catalog.sqlite"
    assert path.stat().st_size > 8192
    os.truncate(path, 4096)


def catalog_missing(root: Path) -> None:
    (root / "catalog.sqlite").unlink()


def catalog_directory(root: Path) -> None:
    (root / "catalog.sqlite").unlink()
    (root / "catalog.sqlite").mkdir()


def catalog_fifo(root: Path) -> None:
    (root / "catalog.sqlite").unlink()
    os.mkfifo(root / "catalog.sqlite")


def catalog_link(root: Path) -> None:  # to an intact copy elsewhere: still refused
    target = _elsewhere(root) / "catalog.sqlite"
    (root / "catalog.sqlite").rename(target)
    (root / "catalog.sqlite").symlink_to(target)


def wal_garbage(root: Path) -> None:
    (root / "catalog.sqlite-wal").write_bytes(_garbage(4096 + 32))


def wal_short(root: Path) -> None:
    (root / "catalog.sqlite-wal").write_bytes(b"\x37\x7f\x06\x82")


def shm_directory(root: Path) -> None:
    (root / "catalog.sqlite-shm").mkdir()


def blobs_file(root: Path) -> None:
    shutil.rmtree(root / "blobs")
    (root / "blobs").write_bytes(b"not a directory")


def blobs_link(root: Path) -> None:  # to the intact blobs, moved elsewhere: still refused
    target = _elsewhere(root) / "blobs"
    (root / "blobs").rename(target)
    (root / "blobs").symlink_to(target)


def blob_missing(root: Path) -> None:
    for blob in _blobs(root):
        blob.unlink()


def blob_altered(root: Path) -> None:
    for blob in _blobs(root):
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0x01
        blob.write_bytes(bytes(data))


def blob_truncated(root: Path) -> None:
    for blob in _blobs(root):
        os.truncate(blob, blob.stat().st_size - 7)


def blob_link(root: Path) -> None:  # to the identical bytes elsewhere: still refused
    for blob in _blobs(root):
        target = _elsewhere(root) / blob.name
        blob.rename(target)
        blob.symlink_to(target)


def blob_directory(root: Path) -> None:
    for blob in _blobs(root):
        blob.unlink()
        blob.mkdir()


def blob_fifo(root: Path) -> None:
    for blob in _blobs(root):
        blob.unlink()
        os.mkfifo(blob)


def _sql(root: Path, statement: str) -> None:
    db = sqlite3.connect(root / "catalog.sqlite")
    with db:
        db.execute(statement)
    db.close()


def row_bad_json(root: Path) -> None:
    _sql(root, "UPDATE records SET config = '{\"task\": ' || quote(name)")


def row_not_an_object(root: Path) -> None:
    _sql(root, "UPDATE records SET metrics = '[1, 2]'")


def row_blob_path_elsewhere(root: Path) -> None:
    _sql(root, "UPDATE records SET blob = '../../' || id || '.safetensors'")


def row_edited(root: Path) -> None:  # valid JSON, wrong provenance: the blob's own copy disagrees
    _sql(root, "UPDATE records SET model_id = 'gpt2', layer = 3")


@dataclass(frozen=True)
class Damage:
    apply: Callable[[Path], None]
    level: str  # catalog | blobs-dir | blob | row (unparseable) | edited (parseable, disagrees with its blob)
    says: str  # words the error must contain

    @property
    def name(self) -> str:
        return self.apply.__name__


DAMAGES = [
    Damage(catalog_garbage, "catalog", "not an SQLite database"),
    Damage(catalog_empty, "catalog", "empty"),
    Damage(catalog_truncated, "catalog", "corrupt"),
    Damage(catalog_missing, "catalog", "missing"),
    Damage(catalog_directory, "catalog", "a directory"),
    Damage(catalog_fifo, "catalog", "a FIFO"),
    Damage(catalog_link, "catalog", "symbolic link"),
    Damage(wal_garbage, "catalog", "write-ahead log"),
    Damage(wal_short, "catalog", "write-ahead log"),
    Damage(shm_directory, "catalog", "shared-memory"),
    Damage(blobs_file, "blobs-dir", "not a directory"),
    Damage(blobs_link, "blobs-dir", "symbolic link"),
    Damage(blob_missing, "blob", "missing"),
    Damage(blob_altered, "blob", "checksum"),
    Damage(blob_truncated, "blob", "checksum"),
    Damage(blob_link, "blob", "symbolic link"),
    Damage(blob_directory, "blob", "a directory"),
    Damage(blob_fifo, "blob", "a FIFO"),
    Damage(row_bad_json, "row", "not valid JSON"),
    Damage(row_not_an_object, "row", "not an object"),
    Damage(row_blob_path_elsewhere, "row", "blob path"),
    Damage(row_edited, "edited", "disagrees"),
]
IDS = [d.name for d in DAMAGES]


def _fake_model_loader(name: str, **options: Any) -> tuple[Any, Any]:
    return object(), object()  # any use of it fails loudly: the store error must come first


@dataclass(frozen=True)
class Verb:
    name: str
    argv: Callable[[Path], list[str]]
    survives: frozenset[str] = frozenset()  # damage levels the verb does not read (it must then succeed)


VERBS = [
    Verb("store ls", lambda r: ["store", "--store", str(r), "ls"], frozenset({"blob", "edited"})),
    Verb("store show", lambda r: ["store", "--store", str(r), "show", "sent"], frozenset({"blob", "edited"})),
    Verb("store verify", lambda r: ["store", "--store", str(r), "verify"]),
    Verb("store export", lambda r: ["store", "--store", str(r), "export", "--out", str(r.parent / "bundle")]),
    Verb("store rm", lambda r: ["store", "--store", str(r), "rm", "sent"], frozenset({"blob", "edited", "row"})),
    Verb("generate", lambda r: ["generate", "--model", "m", "--store", str(r), "--vector", "sent", "Hi"]),
    Verb(
        "eval task",
        lambda r: ["eval", "task", "--model", "m", "--store", str(r), "--vector", "sent", "--task", "capitals"],
    ),
    Verb("vector export", lambda r: ["vector", "export", "sent", "--store", str(r), "--out", str(r.parent / "v.gguf")]),
    Verb("features top", lambda r: ["features", "top", "--store", str(r), "--name", "caps"]),
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


@pytest.mark.parametrize("verb", [v for v in VERBS if v.name not in {"generate", "eval task"}], ids=lambda v: v.name)
def test_every_model_free_verb_works_on_the_healthy_store(verb, root, capsys):
    code, out = _run(verb.argv(root), capsys)
    assert code == 0, out


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: v.name)
@pytest.mark.parametrize("damage", DAMAGES, ids=IDS)
def test_damaged_store_cli(damage, verb, root, capsys, monkeypatch):
    monkeypatch.setattr("saesteer.models.load_model", _fake_model_loader)
    sent = Store(root).get("sent").id
    damage.apply(root)
    code, out = _run(verb.argv(root), capsys)
    assert "Traceback" not in out
    if damage.level in verb.survives:
        assert code == 0, out
        if verb.name == "store rm":  # the fix for a damaged record works, and touches nothing outside the store
            with sqlite3.connect(root / "catalog.sqlite") as db:
                assert [row[0] for row in db.execute("SELECT id FROM records WHERE name = 'sent'")] == []
            assert damage.level == "row" or not os.path.lexists(root / "blobs" / f"{sent}.safetensors")
            assert all(p.exists() for p in _elsewhere(root).iterdir())
        return
    assert code == 2, out
    assert out.startswith("error:") or "error:" in out, out
    assert "Fix:" in out.split("error:", 1)[1], out
    assert damage.says in out, out
    if verb.name == "store export":
        bundle = root.parent / "bundle"
        assert not (bundle / "records.jsonl").exists() and not list(bundle.glob("blobs/*"))


@pytest.mark.parametrize("damage", DAMAGES, ids=IDS)
def test_damaged_store_python_api(damage, root):
    opened = Store(root)  # opened before the damage: every call checks again
    damage.apply(root)

    def fails(action: Callable[[], object]) -> str:
        with pytest.raises(StoreError) as info:
            action()
        message = str(info.value)
        assert "\n" not in message and "Fix:" in message and damage.says in message, message
        return message

    if damage.level in {"catalog", "blobs-dir"}:
        fails(lambda: Store(root))
    else:
        assert Store(root).catalog.path == root / "catalog.sqlite"
    fails(lambda: opened.load("sent"))
    if damage.level not in {"catalog", "blobs-dir"}:
        fails(lambda: Store(root).load("sent"))
    if damage.level in {"catalog", "row"}:
        fails(lambda: opened.get("sent"))
    else:
        assert opened.get("sent").name == "sent"
    if damage.level == "catalog":
        fails(opened.verify)
    else:
        problems = opened.verify()
        assert problems and all(damage.says in p for p in problems), problems


def _crash_snapshot(root: Path, target: Path) -> None:
    """``target``: ``root`` as a crash would leave it, with a record committed only in the WAL."""
    holder = sqlite3.connect(root / "catalog.sqlite")  # keeps the WAL from being checkpointed away
    try:
        holder.execute("SELECT count(*) FROM records").fetchone()
        Store(root).save("late", SteeringVector(vector=torch.full((WIDTH,), 3.0), layer=4))
        assert (root / "catalog.sqlite-wal").stat().st_size > 0
        shutil.copytree(root, target)
    finally:
        holder.close()


def test_a_garbage_shm_is_rebuilt_and_a_torn_wal_tail_is_a_normal_crash(root, tmp_path, capsys):
    snapshot = tmp_path / "crashed"
    _crash_snapshot(root, snapshot)
    (snapshot / "catalog.sqlite-shm").write_bytes(_garbage(32768))  # an index SQLite rebuilds from the WAL
    with open(snapshot / "catalog.sqlite-wal", "ab") as wal:
        wal.write(_garbage(5000))  # a transaction torn by the crash: SQLite ignores frames that fail their checksum
    store = Store(snapshot)
    assert torch.equal(store.load("late").vector, torch.full((WIDTH,), 3.0))
    assert torch.equal(store.load("sent").vector, SENT)
    assert store.verify() == []
    assert _run(["store", "--store", str(snapshot), "verify"], capsys) == (0, "all records verified")


def test_verify_lists_every_damaged_record(root, capsys):
    store = Store(root)
    (root / store.get("sent").blob).unlink()
    blob = root / store.get("caps").blob
    blob.write_bytes(blob.read_bytes()[:-1])
    _sql(root, "UPDATE records SET metrics = 'oops' WHERE name = 'caps-stats'")
    problems = store.verify()
    assert len(problems) == 3, problems
    code, out = _run(["store", "--store", str(root), "verify"], capsys)
    assert code == 2 and "error: 3 problem(s)" in out and "Fix:" in out
    for says in ("'sent'", "missing", "'caps'", "checksum", "'caps-stats'", "metrics is not valid JSON"):
        assert says in out, out
    for name in ("sent", "caps", "caps-stats"):
        assert main(["store", "--store", str(root), "rm", name]) == 0
    assert Store(root).verify() == [] and Store(root).find() == []


def test_generate_with_the_real_model_on_a_healthy_and_a_damaged_store(root, smollm2, capsys, monkeypatch):
    monkeypatch.setattr("saesteer.models.load_model", lambda name, **options: smollm2)
    argv = ["generate", "--model", "smollm2-135m-instruct", "--store", str(root), "--vector", "sent"]
    code, out = _run([*argv, "--max-new-tokens", "2", "Hi"], capsys)
    assert code == 0 and "alpha +4" in out, out
    blob_altered(root)
    code, out = _run([*argv, "Hi"], capsys)
    assert code == 2 and "checksum" in out and "Fix:" in out, out

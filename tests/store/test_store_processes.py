"""Atomic writes under SIGKILL, and concurrent writers (real subprocesses)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from saesteer.store import Store

WRITER = Path(__file__).with_name("store_writer.py")


def start_writer(root: Path, count: int, prefix: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(root), str(count), prefix],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def test_sigkill_during_puts_never_leaves_a_half_written_record(tmp_path):
    rng = random.Random(0)
    root = tmp_path / "store"
    counts = []
    for attempt in range(12):
        writer = start_writer(root, 10_000, f"run{attempt}")
        time.sleep(rng.uniform(0.02, 0.3))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        store = Store(root)
        assert store.verify() == []  # every catalogued record has its full, checksummed blob
        counts.append(len(store.find()))
    assert counts[-1] > 12, "the writer should have completed some puts between kills"
    store = Store(root)
    for record in store.find():
        index = int(record.name.rsplit("-", 1)[1])
        assert torch.equal(store.tensors(record)["vector"], torch.full((50_000,), float(index)))
    store.gc()
    assert sorted(p.name for p in (root / "blobs").iterdir()) == sorted(Path(r.blob).name for r in store.find())


def test_concurrent_writers_lose_no_records(tmp_path):
    root = tmp_path / "store"
    Store(root)
    writers = [start_writer(root, 15, f"w{i}") for i in range(3)]
    for writer in writers:
        assert writer.wait(timeout=300) == 0
    store = Store(root)
    assert len(store.find()) == 45
    assert {r.name for r in store.find()} == {f"w{i}-{j}" for i in range(3) for j in range(15)}
    assert store.verify() == []

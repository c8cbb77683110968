"""Subprocess used by the store tests: writes records in a loop (killed mid-write, or run in parallel)."""

from __future__ import annotations

import sys

import torch

from saesteer.store import Store

if __name__ == "__main__":
    root, count, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(1)
    store = Store(root)
    print("ready", flush=True)
    for index in range(count):
        store.put("vector", f"{prefix}-{index}", {"vector": torch.full((50_000,), float(index))}, layer=index % 7)

"""Fixtures for the vLLM backend's tests (run in the vLLM environment: `bash scripts/test.sh` does it).

One in-process engine on the real SmolLM2 serves the whole session; the HF reference is the shared
``smollm2`` fixture. The KV cache is kept small so the engine, the HF model and a server fit beside each other.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``own_engine`` (they start and close an in-process engine of their own) run after all others:
    closing an in-process engine tears down vLLM's process-wide parallel groups, which the shared one needs."""
    items.sort(key=lambda item: item.get_closest_marker("own_engine") is not None)


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    """A VLLMModel of SmolLM2-135M-Instruct (float32, eager, prefix caching on, chunked prefill at 64 tokens)."""
    from saesteer.backends.vllm import VLLMModel

    model = VLLMModel("smollm2-135m-instruct", max_num_batched_tokens=64, enable_chunked_prefill=True)
    yield model
    model.close()

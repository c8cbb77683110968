"""A small corpus summary of the session's test SAE (2k tokens of python-docs), shared by the feature tests."""

from __future__ import annotations

from typing import Any

import pytest

from saesteer.features.activations import FeatureSummary, Settings, corpus_windows, summarise

SETTINGS = Settings(corpus="python-docs", tokens=2048, context=64, batch_size=8, top_k=4)


@pytest.fixture(scope="session")
def small_summary(smollm2: tuple[Any, Any], smollm2_sae: tuple[Any, Any]) -> FeatureSummary:
    model, tokenizer = smollm2
    windows = corpus_windows(tokenizer, SETTINGS)
    return summarise(
        model, smollm2_sae[0], windows, layer=8, hook_point="resid_post", settings=SETTINGS, progress=False
    )

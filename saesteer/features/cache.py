"""Corpus summaries cached in the store as ``feature_summary`` records keyed by (SAE record, tokens, settings)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from saesteer.features.activations import FeatureSummary, Settings, corpus_windows, summarise
from saesteer.store import Record, Store

METHOD = "feature-activations"


def summary_key(sae_record: Record, token_hash: str, settings: Settings) -> str:
    """The cache key: the SAE record's id and checksum, the exact corpus tokens, and the settings."""
    payload = {"sae": sae_record.id, "checksum": sae_record.checksum, "tokens": token_hash, **settings.to_dict()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def cached_summary(
    store: Store,
    sae_record: Record,
    model: Any,
    tokenizer: Any,
    sae: Any,
    settings: Settings,
    *,
    progress: bool = True,
) -> tuple[FeatureSummary, bool]:
    """The summary of ``settings``'s corpus for the SAE of ``sae_record`` and whether it came from the store.
    The corpus is always tokenised (cheap) so that its hash keys the cache; the model runs only on a miss."""
    windows = corpus_windows(tokenizer, settings)
    token_hash = hashlib.sha256(windows.numpy().tobytes()).hexdigest()[:16]
    key = summary_key(sae_record, token_hash, settings)
    found = store.find(kind="feature_summary", config={"key": key})
    if found:
        return FeatureSummary.from_tensors(store.tensors(found[0])), True
    hook_point = sae_record.hook_point or "resid_post"
    summary = summarise(
        model,
        sae,
        windows,
        layer=int(sae_record.layer or 0),
        hook_point=hook_point,  # type: ignore[arg-type]
        settings=settings,
        progress=progress,
    )
    store.put(
        "feature_summary",
        f"{sae_record.name}-summary-{key[:8]}",
        summary.tensors(),
        model_id=sae_record.model_id,
        model_fingerprint=sae_record.model_fingerprint,
        layer=sae_record.layer,
        hook_point=hook_point,
        method=METHOD,
        config={"key": key, "sae": sae_record.name, "sae_id": sae_record.id, "settings": settings.to_dict()},
        data_hash=token_hash,
        metrics={"tokens": summary.n_tokens, "alive": int((summary.max > 0).sum())},
    )
    return summary, False

"""SAE feature discovery: corpus statistics, per-token and concept search, logit lens, static dashboards."""

from saesteer.features.activations import FeatureSummary, Settings, corpus_windows, summarise
from saesteer.features.cache import cached_summary
from saesteer.features.logit_lens import logit_lens
from saesteer.features.search import concept_data, pooled_latents, separation, text_latents

__all__ = [
    "FeatureSummary",
    "Settings",
    "cached_summary",
    "concept_data",
    "corpus_windows",
    "logit_lens",
    "pooled_latents",
    "separation",
    "summarise",
    "text_latents",
]

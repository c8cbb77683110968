"""Streaming statistics over SAE feature activations (CorrSteer)."""

from saesteer.stats.feature_stats import FeatureStats

__all__ = ["FeatureStats"]

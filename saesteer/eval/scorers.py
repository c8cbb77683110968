"""Text scorers that run offline. Each is a heuristic or proxy and is named as such in reports."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from saesteer.data import sample_path


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER compound sentiment in [-1, 1] (lexicon-based, no model)."""
    return float(_vader().polarity_scores(text)["compound"])


def distinct_n(text: str, n: int = 2) -> float:
    """Fraction of distinct word n-grams (1.0 = no repetition; near 0 = degenerate loops)."""
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


@cache
def refusal_prefixes() -> tuple[str, ...]:
    lines = sample_path("harmbench/refusal_prefixes.txt").read_text(encoding="utf-8").splitlines()
    return tuple(line for line in lines if line)


def is_refusal(text: str, prefixes: Sequence[str] | None = None) -> bool:
    """Refusal by the AdvBench/HarmBench prefix heuristic: any listed phrase occurs in the text."""
    return any(p in text for p in (prefixes or refusal_prefixes()))

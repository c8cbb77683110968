"""Concept-presence proxy: keyword overlap between a concept description and a text (named as a proxy).

AxBench asks an LLM judge whether a concept is incorporated; offline we match the description's content
words (crudely stemmed) against the text. Weak but deterministic and cheap; reports must call it a proxy.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[a-z][a-z+#]*")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "any",
        "are",
        "as",
        "associated",
        "at",
        "be",
        "by",
        "concept",
        "concepts",
        "context",
        "contexts",
        "different",
        "etc",
        "for",
        "from",
        "in",
        "including",
        "into",
        "is",
        "its",
        "it",
        "mentions",
        "mention",
        "of",
        "on",
        "or",
        "other",
        "particular",
        "phrase",
        "phrases",
        "reference",
        "references",
        "referring",
        "related",
        "relating",
        "something",
        "specific",
        "statement",
        "statements",
        "such",
        "term",
        "terms",
        "that",
        "the",
        "their",
        "them",
        "these",
        "they",
        "this",
        "those",
        "to",
        "use",
        "used",
        "using",
        "various",
        "via",
        "which",
        "with",
        "within",
        "word",
        "words",
        "about",
        "act",
    ]
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s")


def stem(word: str) -> str:
    """Strip one common English suffix, keeping at least four characters."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def stems(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text.lower()) if len(w) > 2}


@lru_cache(maxsize=1024)
def concept_keywords(concept: str) -> tuple[str, ...]:
    """Content-word stems of a concept description, in order, without stop words."""
    words = [w for w in _WORD.findall(concept.lower()) if len(w) > 2 and w not in _STOP]
    return tuple(dict.fromkeys(stem(w) for w in words))


def concept_score(concept: str, text: str) -> float:
    """Fraction of the concept's keywords that occur in ``text`` (0 when the concept has none)."""
    keywords = concept_keywords(concept)
    if not keywords:
        return 0.0
    present = stems(text)
    return sum(k in present for k in keywords) / len(keywords)


def concept_rating(concept: str, text: str) -> int:
    """AxBench-style 0-2 concept rating from keyword overlap: 0 none, 1 one keyword, 2 two or more (or all)."""
    keywords = concept_keywords(concept)
    hits = sum(k in stems(text) for k in keywords)
    if hits == 0:
        return 0
    return 2 if hits >= 2 or hits == len(keywords) else 1

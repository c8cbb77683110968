"""PSR's triplet filter: an attribute judge and a coherence judge score each (x, y'); the paper drops every
triplet scoring < 0.5 on either (scores in [0, 1]) and trains with the attribute score as the soft label.

Judges are the AxBench raters of ``saesteer.eval.judges`` (spec ``proxy``, ``hf:MODEL`` or
``openai:MODEL@BASE_URL``): attribute = concept rating / 2 (the concept is the trait or concept text),
coherence = fluency rating / 2. The proxy rater is keyword overlap + perplexity: name it a proxy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from saesteer.engines.psr.data import Triplet
from saesteer.errors import DataError
from saesteer.eval.judges import HFJudge, JudgeItem, OpenAIJudge, ProxyJudge
from saesteer.eval.judges import Judge as Rater

THRESHOLD = 0.5
Scores = Callable[[Sequence[str], Sequence[str]], list[tuple[float, float]]]  # -> (coherence, attribute)


@dataclass(frozen=True)
class TripletFilter:
    """What the filter did: which judge, how many triplets came in and how many each judge dropped."""

    judge: str
    generated: int
    dropped_coherence: int
    dropped_attribute: int
    threshold: float = THRESHOLD

    @property
    def kept(self) -> int:
        return self.generated - self.dropped_coherence - self.dropped_attribute

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "kept": self.kept}


def make_rater(spec: str, model: Any, tokenizer: Any) -> Rater:
    """An AxBench rater from its spec; ``proxy`` reuses the (unsteered) model under training for perplexity."""
    kind, _, rest = spec.partition(":")
    if spec == "proxy":
        return ProxyJudge(model, tokenizer)
    if kind == "hf" and rest:
        return HFJudge(rest)
    name, _, url = rest.partition("@")
    return OpenAIJudge(name, base_url=url)


def rating_scores(rater: Rater, attribute: str) -> Scores:
    """(coherence, attribute) in [0, 1] from one AxBench rating per (prompt, response): fluency / 2, concept / 2."""

    def scores(prompts: Sequence[str], responses: Sequence[str]) -> list[tuple[float, float]]:
        items = [JudgeItem(attribute, p, r) for p, r in zip(prompts, responses, strict=True)]
        return [(r["fluency"] / 2, r["concept"] / 2) for r in rater.rate(items)]

    return scores


def filter_triplets(triplets: Sequence[Triplet], scores: Scores, judge: str) -> tuple[list[Triplet], TripletFilter]:
    """Drop triplets with coherence < 0.5, then those with attribute < 0.5; the kept ones carry the attribute
    score as their label (the training strength)."""
    found = scores([t.prompt for t in triplets], [t.response for t in triplets])
    incoherent = sum(c < THRESHOLD for c, _ in found)
    kept = [
        replace(t, label=float(a))
        for t, (c, a) in zip(triplets, found, strict=True)
        if c >= THRESHOLD and a >= THRESHOLD
    ]
    report = TripletFilter(judge, len(triplets), incoherent, len(triplets) - incoherent - len(kept))
    if not kept:
        raise DataError(
            f"The {judge} judge dropped all {len(triplets)} triplets (coherence or attribute < {THRESHOLD}; "
            f"{incoherent} incoherent). Fix: use more prompts, a longer max_new_tokens, another judge, or "
            "--no-filter-triplets."
        )
    return kept, report

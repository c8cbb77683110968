"""CorrSteer's side-effect ratio (SER): of the samples whose steered output changed, the share that got worse."""

from __future__ import annotations

from collections.abc import Mapping


def side_effect_ratio(
    baseline: Mapping[str, tuple[str, float]], steered: Mapping[str, tuple[str, float]]
) -> float | None:
    """Among samples whose steered generation differs from the unsteered one, the fraction whose score got
    worse. Both map sample id -> (generation, score); ids missing from ``baseline`` are skipped. None if
    nothing changed (or every change kept its score)."""
    worse = better = 0
    for sample_id, (text, score) in steered.items():
        if sample_id not in baseline or baseline[sample_id][0] == text:
            continue
        base_score = baseline[sample_id][1]
        worse += score < base_score
        better += score > base_score
    return worse / (worse + better) if worse + better else None

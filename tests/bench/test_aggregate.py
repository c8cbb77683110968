from __future__ import annotations

import pytest

from saesteer.bench.aggregate import bootstrap_ci, leaderboard, select_factor
from saesteer.bench.records import BenchRecord
from saesteer.eval.ser import side_effect_ratio


def _rec(method, factor, sample, score, *, unit="c0", phase="test", generation=None, task="axbench", **scores):
    return BenchRecord(
        task=task,
        unit=unit,
        method=method,
        factor=factor,
        sample_id=sample,
        prompt="p",
        generation=generation if generation is not None else f"{method}{factor}{sample}",
        score=score,
        scores={"hm": score, **scores},
        phase=phase,
    )


def test_select_factor_takes_the_best_mean_and_the_smaller_factor_on_ties():
    records = [_rec("m", 1.0, "a", 0.5), _rec("m", 1.0, "b", 1.5), _rec("m", 2.0, "a", 1.0), _rec("m", 2.0, "b", 1.0)]
    assert select_factor(records) == 1.0
    records.append(_rec("m", 4.0, "a", 2.0))
    assert select_factor(records) == 4.0


def test_axbench_factor_is_chosen_on_select_instructions_and_reported_on_test_ones():
    records = []
    # concept c0: factor 1 wins on selection (1.5 vs 0.5) but would lose on test; the report must use factor 1.
    for sample, phase in (("i0", "select"), ("i1", "select"), ("i2", "test"), ("i3", "test")):
        records.append(_rec("caa", 1.0, sample, 1.5 if phase == "select" else 0.2, phase=phase))
        records.append(_rec("caa", 2.0, sample, 0.5 if phase == "select" else 1.8, phase=phase))
    # concept c1: factor 2 wins on selection.
    for sample, phase in (("i0", "select"), ("i1", "test")):
        records.append(_rec("caa", 1.0, sample, 0.0, unit="c1", phase=phase))
        records.append(_rec("caa", 2.0, sample, 1.0, unit="c1", phase=phase))
    context = {"methods": {"caa": {"kind": "caa", "layers": "8"}}, "metrics": {"axbench": ["hm"]}}
    (row,) = leaderboard(records, context)
    assert row.n == 3  # two test instructions of c0 at factor 1, one of c1 at factor 2
    assert row.score == pytest.approx((0.2 + 0.2 + 1.0) / 3)
    assert row.factor.startswith("per-concept") and row.extra["concepts"] == 2


def test_side_effect_ratio_on_constructed_cases():
    base = {"a": ("x", 1.0), "b": ("y", 1.0), "c": ("z", 0.0), "d": ("w", 1.0)}
    assert side_effect_ratio(base, dict(base)) is None  # nothing changed
    steered = {"a": ("x2", 0.0), "b": ("y", 1.0), "c": ("z2", 1.0), "d": ("w2", 0.0)}
    assert side_effect_ratio(base, steered) == pytest.approx(2 / 3)  # a and d worse, c better, b unchanged
    assert side_effect_ratio(base, {"a": ("x2", 1.0)}) is None  # changed text, same score: neither


def test_leaderboard_ser_is_against_the_unsteered_method():
    records = [
        _rec("plain", 0.0, "a", 1.0, task="mmlu", unit="mmlu", generation="A"),
        _rec("plain", 0.0, "b", 0.0, task="mmlu", unit="mmlu", generation="B"),
        _rec("vec", 2.0, "a", 0.0, task="mmlu", unit="mmlu", generation="C"),
        _rec("vec", 2.0, "b", 0.0, task="mmlu", unit="mmlu", generation="B"),
    ]
    context = {"methods": {"plain": {"kind": "unsteered"}, "vec": {"kind": "caa"}}, "metrics": {"mmlu": ["hm"]}}
    rows = {r.method: r for r in leaderboard(records, context)}
    assert rows["plain"].ser is None and rows["vec"].ser == 1.0
    assert rows["vec"].score == 0.0 and rows["plain"].score == 0.5


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    values = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]
    low, high = bootstrap_ci(values, seed=3)
    assert low <= 0.7 <= high and 0 <= low < high <= 1
    assert bootstrap_ci(values, seed=3) == (low, high)
    assert bootstrap_ci([0.4]) == (0.4, 0.4)

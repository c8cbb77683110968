"""From per-sample records to leaderboard rows: means with bootstrap intervals, side-effect ratios against
the unsteered run, and AxBench's per-concept factor selection (choose on instructions 0-4, report 5-9)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from saesteer.bench.records import BenchRecord
from saesteer.eval.ser import side_effect_ratio


@dataclass
class LeaderboardRow:
    task: str
    metric: str
    method: str
    kind: str
    model: str
    layers: str
    factor: str
    score: float
    ci_low: float
    ci_high: float
    ser: float | None
    n: int
    judge: str
    wall_s: float
    tokens_per_s: float | None
    extra: dict[str, Any] = field(default_factory=dict)
    backend: str = "hf"  # what generated the row's records (rows of leaderboards from before the field: hf)


def bootstrap_ci(values: Sequence[float], *, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean (seeded; a single value gives a zero-width interval)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (float("nan"), float("nan"))
    if data.size == 1:
        return (float(data[0]), float(data[0]))
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def select_factor(records: Sequence[BenchRecord]) -> float:
    """The factor with the highest mean score on these (selection-phase) records; ties go to the smaller one."""
    by_factor: dict[float, list[float]] = defaultdict(list)
    for record in records:
        by_factor[record.factor].append(record.score)
    return max(sorted(by_factor), key=lambda f: statistics.fmean(by_factor[f]))


def _side_effect(record: BenchRecord, metric: str) -> float:
    if record.task == "axbench":
        return record.scores.get("instruction", 0.0) + record.scores.get("fluency", 0.0)
    return record.scores.get(metric, record.score)


def _timing(records: Sequence[BenchRecord]) -> tuple[float, float | None]:
    seconds = sum(r.seconds for r in records)
    tokens = sum(r.n_tokens for r in records)
    return seconds, (tokens / seconds if seconds > 0 and tokens else None)


def _selected_axbench(records: Sequence[BenchRecord]) -> tuple[list[BenchRecord], list[float]]:
    """Test-phase records at each concept's selected factor, and the chosen factors."""
    by_unit: dict[str, list[BenchRecord]] = defaultdict(list)
    for record in records:
        by_unit[record.unit].append(record)
    chosen: list[BenchRecord] = []
    factors = []
    for unit in sorted(by_unit):
        items = by_unit[unit]
        selecting = [r for r in items if r.phase == "select"] or items
        factor = select_factor(selecting)
        factors.append(factor)
        chosen.extend(r for r in items if r.phase == "test" and r.factor == factor)
    return chosen, factors


def leaderboard(
    records: Sequence[BenchRecord], context: dict[str, Any], *, resamples: int = 2000, seed: int = 0
) -> list[LeaderboardRow]:
    """One row per (task, metric, method, factor); AxBench: one row per method at per-concept factors.
    ``context`` holds model, judge and per-method layers/kind (written by the runner)."""
    groups: dict[tuple[str, str], list[BenchRecord]] = defaultdict(list)
    for record in records:
        groups[(record.task, record.method)].append(record)
    methods = context.get("methods", {})
    baseline_label = next((m for m, info in methods.items() if info.get("kind") == "unsteered"), None)
    rows = []
    for (task, method), items in sorted(groups.items()):
        info = methods.get(method, {})
        metrics = context.get("metrics", {}).get(task, ["score"])
        base_items = groups.get((task, baseline_label), []) if baseline_label else []
        if task == "axbench":
            chosen, factors = _selected_axbench(items)
            base_test = [r for r in base_items if r.phase == "test"]
            factor_groups = [(f"per-concept (median {statistics.median(factors):g})", chosen, base_test)]
        else:
            by_factor: dict[float, list[BenchRecord]] = defaultdict(list)
            for record in items:
                by_factor[record.factor].append(record)
            factor_groups = [(f"{f:g}", by_factor[f], base_items) for f in sorted(by_factor)]
        for factor_label, chosen_records, base in factor_groups:
            seconds, rate = _timing(chosen_records)
            for metric in metrics:
                values = [r.scores.get(metric, r.score) for r in chosen_records]
                if not values:
                    continue
                low, high = bootstrap_ci(values, resamples=resamples, seed=seed)
                ser = None
                if method != baseline_label and base:
                    ser = side_effect_ratio(
                        {r.sample_id + r.unit: (r.generation, _side_effect(r, metric)) for r in base},
                        {r.sample_id + r.unit: (r.generation, _side_effect(r, metric)) for r in chosen_records},
                    )
                extra: dict[str, Any] = {}
                if task == "axbench":
                    extra = {
                        k: statistics.fmean(r.scores.get(k, 0.0) for r in chosen_records)
                        for k in ("concept", "instruction", "fluency")
                    }
                    extra["concepts"] = len({r.unit for r in chosen_records})
                variants = sorted({str(r.meta["variant"]) for r in chosen_records if r.meta.get("variant")})
                if variants:  # which protocol variant answered (e.g. a generated or the fixed steering prompt)
                    extra["variant"] = "; ".join(variants)
                rows.append(
                    LeaderboardRow(
                        task=task,
                        metric=metric,
                        method=method,
                        kind=info.get("kind", method),
                        model=context.get("model", ""),
                        layers=info.get("layers", "-"),
                        factor=factor_label,
                        score=statistics.fmean(values),
                        ci_low=low,
                        ci_high=high,
                        ser=ser,
                        n=len(values),
                        judge=context.get("judges", {}).get(task, "-"),
                        wall_s=seconds,
                        tokens_per_s=rate,
                        extra=extra,
                        backend=",".join(sorted({r.backend for r in chosen_records})),
                    )
                )
    return rows

"""CRH P2, the angle law as CRH's official ``visualization/sincos_rel.py`` computes it.

One steerability per concept: the slope of the label-2 ratio (over that concept's samples) against the step
index at rho = 0. Every sample of a concept carries it. With a the power of the axis norm, the search is over

    x = sin^a(theta) cos^(2p - a)(theta),   y = St_concept / |u|^a,   0 < p < a (t = a - p > 0),

a in [0, 10] by 0.05 and p in [0.1, a - 0.1] by 0.025, keeping the Pearson r that is largest. The code's
default, x = sin^2 cos^-1 (a = 2, p = 0.5), lies on this grid. Samples labelled 2 at the first step and samples
whose concept has zero steerability can be dropped (``sincos_rel.py --exclude_first_step_label2`` and
``--filter_zero_steerability``; the repo's other analyses, ``draw_distri_fullratio.py`` and
``cannot_determine.py``, drop them by default, and so does this module). Samples with cos theta <= 0 are left
out (the official code's fractional powers of a negative cosine are NaN there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from saesteer.analysis import cylinder as crh
from saesteer.errors import DataError

DEFAULT_POWER, DEFAULT_P = 2.0, 0.5  # sincos_rel.py's default x = sin^2 cos^-1, y = St / |u|^2


@dataclass(frozen=True)
class AngleSamples:
    """Per-sample inputs of the official fit: angles, its concept's slope steerability and |u|, its concept."""

    cos: np.ndarray
    sin: np.ndarray
    st: np.ndarray
    norm_u: np.ndarray
    groups: np.ndarray
    dropped_first_step: int  # samples labelled 2 at step 1 (rho = 0), left out
    dropped_zero: int  # samples whose concept's steerability is 0, left out


def angle_samples(
    labels: Sequence[np.ndarray],
    cos: Sequence[np.ndarray],
    sin: Sequence[np.ndarray],
    norm_u: Sequence[float],
    *,
    drop_first_step_concept: bool = True,
    drop_zero_steerability: bool = True,
) -> AngleSamples:
    """Pool concepts: ``labels[c]`` is (n_c, steps) at rho = 0; St_c = slope of the label-2 ratio (kept samples)."""
    if not len(labels) == len(cos) == len(sin) == len(norm_u):
        raise DataError("Need one label grid, angle set and |u| per concept. Fix: pass matching lists.")
    parts: list[tuple[np.ndarray, ...]] = []
    first_step = zero = 0
    for group, (grid, c, s, n) in enumerate(zip(labels, cos, sin, norm_u, strict=True)):
        grid, c, s = np.asarray(grid), np.asarray(c, dtype=float), np.asarray(s, dtype=float)
        if grid.ndim != 2 or grid.shape[0] != c.size or c.size != s.size:
            raise DataError(f"Concept {group}: labels {grid.shape} do not match {c.size} angles. Fix: (n, steps).")
        keep = grid[:, 0] != crh.CONCEPT if drop_first_step_concept else np.ones(c.size, dtype=bool)
        first_step += int((~keep).sum())
        st = crh.steerability_slope(grid[keep]) if keep.any() else 0.0
        if drop_zero_steerability and st == 0.0:
            zero += int(keep.sum())
            continue
        k = int(keep.sum())
        parts.append((c[keep], s[keep], np.full(k, st), np.full(k, float(n)), np.full(k, group)))
    c_all, s_all, st_all, n_all, g_all = (
        [np.concatenate(p) for p in zip(*parts, strict=True)] if parts else [np.zeros(0)] * 5
    )
    return AngleSamples(c_all, s_all, st_all, n_all, g_all.astype(int), first_step, zero)


@dataclass(frozen=True)
class AngleLawFit:
    """Best (a, p) of the official search and, as there, the best r at every power a."""

    power: float  # a: power of |u| in y and of sin in x
    p: float  # x = sin^a cos^(2p - a)
    sin_power: float
    cos_power: float
    r: float
    p_value: float  # Pearson p of the best pair: optimistic, the pair was searched (the official figure's p)
    p_permutation: float  # the search redone with (St, |u|) shuffled across concepts: the honest p-value
    r_default: float  # r at the code default x = sin^2 cos^-1, y = St / |u|^2
    powers: list[float]  # the official figure: best r over p at each a
    r_by_power: list[float]
    n_samples: int
    n_concepts: int
    dropped_first_step: int
    dropped_zero: int
    holds: bool  # r > 0 with p_permutation < 0.05


def _standardise(rows: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm (zero rows where constant), so a dot product is Pearson r."""
    centred = rows - rows.mean(-1, keepdims=True)
    norm = np.sqrt((centred**2).sum(-1, keepdims=True))
    return np.divide(centred, norm, out=np.zeros_like(centred), where=norm > 0)


def _grid(power_step: float, p_step: float, max_power: float) -> list[tuple[float, np.ndarray]]:
    """(a, the p values with 0.1 <= p <= a - 0.1) for a = 0, step, ..., max_power (integer-indexed grids)."""
    rows = []
    for i in range(round(max_power / power_step) + 1):
        a = round(i * power_step, 10)
        count = int(np.floor((a - 0.2) / p_step + 1e-9)) + 1
        ps = np.round(0.1 + p_step * np.arange(max(count, 0)), 10)
        rows.append((a, ps[(ps > 0) & (ps < a)]))
    return rows


def angle_law_fit(
    data: AngleSamples,
    *,
    power_step: float = 0.05,
    p_step: float = 0.025,
    max_power: float = 10.0,
    permutations: int = 200,
    seed: int = 0,
) -> AngleLawFit:
    """The official (a, p) search on pooled samples (``angle_samples``), plus a concept-level permutation test."""
    keep = (data.cos > 0) & (data.norm_u > 0)
    cos, sin, st, norm_u, groups = (v[keep] for v in (data.cos, data.sin, data.st, data.norm_u, data.groups))
    concepts = np.unique(groups)
    if cos.size < 3 or concepts.size < 2:
        raise DataError(
            f"The angle law needs >= 3 samples from >= 2 concepts with cos(theta) > 0 and St != 0, got "
            f"{cos.size} from {concepts.size}. Fix: analyse more concepts or keep zero-steerability samples."
        )
    rng = np.random.default_rng(seed)
    index = np.searchsorted(concepts, groups)
    concept_st = np.array([st[groups == g][0] for g in concepts])
    concept_norm = np.array([norm_u[groups == g][0] for g in concepts])
    shuffles = np.stack([np.arange(concepts.size)] + [rng.permutation(concepts.size) for _ in range(permutations)])
    st_rows, log_norm_rows = concept_st[shuffles][:, index], np.log(concept_norm)[shuffles][:, index]
    log_sin, log_cos = np.log(np.clip(sin, 1e-12, None)), np.log(cos)
    best = (-np.inf, 0.0, 0.0)
    null = np.full(permutations, -np.inf)
    powers, r_by_power, r_default = [], [], float("nan")
    for a, ps in _grid(power_step, p_step, max_power):
        if ps.size == 0:
            continue
        x = _standardise(np.exp(a * log_sin[None] + (2 * ps[:, None] - a) * log_cos[None]))
        y = _standardise(st_rows * np.exp(-a * log_norm_rows))
        r = x @ y.T  # (len(ps), 1 + permutations)
        valid = np.abs(x).sum(-1) > 0
        if not valid.any() or not np.abs(y[0]).sum() > 0:
            continue
        observed = np.where(valid, r[:, 0], -np.inf)
        j = int(np.argmax(observed))
        powers.append(a)
        r_by_power.append(float(observed[j]))
        if observed[j] > best[0]:
            best = (float(observed[j]), a, float(ps[j]))
        if permutations:
            null = np.maximum(null, np.where(valid[:, None], r[:, 1:], -np.inf).max(0))
        at_default = np.isclose(ps, DEFAULT_P)
        if np.isclose(a, DEFAULT_POWER) and at_default.any():
            r_default = float(r[at_default.argmax(), 0])
    r_best, a_best, p_best = best
    if not np.isfinite(r_best):
        raise DataError("Steerability is the same for every kept concept. Fix: analyse concepts that differ.")
    n = cos.size
    t_stat = r_best * np.sqrt((n - 2) / max(1e-300, 1 - r_best**2))
    p_value = float(2 * stats.t.sf(abs(t_stat), n - 2)) if n > 2 else float("nan")
    p_perm = (1 + int(np.sum(null >= r_best - 1e-12))) / (1 + permutations) if permutations else float("nan")
    return AngleLawFit(
        power=a_best,
        p=p_best,
        sin_power=a_best,
        cos_power=round(2 * p_best - a_best, 10),
        r=r_best,
        p_value=p_value,
        p_permutation=float(p_perm),
        r_default=r_default,
        powers=powers,
        r_by_power=r_by_power,
        n_samples=int(n),
        n_concepts=int(concepts.size),
        dropped_first_step=data.dropped_first_step,
        dropped_zero=data.dropped_zero,
        holds=bool(r_best > 0 and p_perm < 0.05),
    )

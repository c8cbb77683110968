"""CRH geometry (Cylindrical Representation Hypothesis, arXiv 2605.01844): pure tensor / numpy / scipy.

A sample's difference vector v_d (hidden state with the concept response minus without) makes an angle
theta with the population axis u (DiffMean). The penalised steering vector keeps the axis part and
shrinks the normal part: v(L, rho) = L (cos theta u_hat + (1 - rho) sin theta e_perp). Steerability,
the unimodal angle law (P2) and pairwise (un)predictability (P3) are computed from sweep labels
(1 normal, 2 concept present, 3 gibberish).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from saesteer.errors import ConfigError, DataError, VectorError

AxisMethod = Literal["diffmean", "pca", "mean_center"]
NORMAL, CONCEPT, GIBBERISH = 1, 2, 3
_EPS = 1e-10


def _rows(v: Tensor, what: str) -> Tensor:
    v = torch.as_tensor(v).to(torch.float64)
    if v.dim() not in (1, 2) or v.shape[-1] == 0:
        raise VectorError(f"{what} must have shape (d,) or (n, d), got {tuple(v.shape)}. Fix: stack 1-D vectors.")
    if not torch.isfinite(v).all():
        raise VectorError(f"{what} has NaN/inf values. Fix: recompute the hidden states in float32.")
    return v


def _unit(v: Tensor, what: str) -> Tensor:
    norm = v.norm(dim=-1, keepdim=True)
    if bool((norm < _EPS).any()):
        raise VectorError(f"{what} has zero norm, so it has no direction. Fix: drop that sample or axis.")
    return v / norm


def angles(v_d: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """cos theta and sin theta = sqrt(1 - cos^2) between each difference vector (row) and the axis u."""
    v_d, u = _rows(v_d, "v_d"), _rows(u, "u")
    cos = (_unit(v_d, "v_d") * _unit(u, "u")).sum(-1).clamp(-1.0, 1.0)
    return cos, (1.0 - cos**2).clamp(min=0.0).sqrt()


def normal_direction(v_d: Tensor, u: Tensor) -> Tensor:
    """e_perp = unit(v_d - <v_d, u_hat> u_hat) per row; zero where v_d lies on the axis (as CRH's code)."""
    v_d, u_hat = _rows(v_d, "v_d"), _unit(_rows(u, "u"), "u")
    perp = v_d - (v_d * u_hat).sum(-1, keepdim=True) * u_hat
    norm = perp.norm(dim=-1, keepdim=True)
    return torch.where(norm > _EPS * v_d.norm(dim=-1, keepdim=True).clamp(min=1.0), perp / norm.clamp(min=_EPS), 0.0)


@dataclass(frozen=True)
class Decomposition:
    """v = axis + normal + rest: along u_hat, along the sample's e_perp, and what is left."""

    axis: Tensor
    normal: Tensor
    rest: Tensor


def decompose(v: Tensor, u: Tensor, v_d: Tensor) -> Decomposition:
    """Split steering vector(s) ``v`` into the u-axis part, the part along v_d's normal e_perp, and the rest."""
    v = _rows(v, "v")
    u_hat, e_perp = _unit(_rows(u, "u"), "u"), normal_direction(v_d, u)
    axis = (v * u_hat).sum(-1, keepdim=True) * u_hat
    normal = (v * e_perp).sum(-1, keepdim=True) * e_perp
    return Decomposition(axis=axis, normal=normal, rest=v - axis - normal)


def penalised_vector(u: Tensor, v_d: Tensor, length: float, rho: float) -> Tensor:
    """v(L, rho) = L (cos theta u_hat + (1 - rho) sin theta e_perp); rho = 0 gives L * v_d / |v_d|."""
    return penalised_grid(u, v_d, [length], [rho])[..., 0, 0, :]


def penalised_grid(u: Tensor, v_d: Tensor, lengths: list[float], rhos: list[float]) -> Tensor:
    """Every v(L, rho) for each sample: shape (n, len(lengths), len(rhos), d) (or without n for one v_d)."""
    if not lengths or not rhos:
        raise ConfigError("The sweep needs at least one length L and one penalty rho. Fix: pass non-empty grids.")
    bad = [r for r in rhos if not 0.0 <= r <= 1.0]
    if bad:
        raise ConfigError(f"Penalties rho must lie in [0, 1], got {bad}. Fix: use e.g. linspace(0, 1, 5).")
    cos, sin = angles(v_d, u)
    u_hat, e_perp = _unit(_rows(u, "u"), "u"), normal_direction(v_d, u)
    lengths_t = torch.tensor(lengths, dtype=torch.float64)[:, None, None]
    keep = (1.0 - torch.tensor(rhos, dtype=torch.float64))[None, :, None]
    axis = (cos[..., None] * u_hat)[..., None, None, :]
    normal = (sin[..., None] * e_perp)[..., None, None, :]
    return lengths_t * (axis + keep * normal)


def population_axis(
    r_with: Tensor, r_no: Tensor, method: AxisMethod = "diffmean", background: Tensor | None = None
) -> Tensor:
    """Steering axis u from training activations: DiffMean, PC1 of the differences, or mean-centering.

    diffmean: mean(r_with) - mean(r_no). pca: first principal direction of the (uncentred) differences,
    signed and scaled like DiffMean. mean_center: mean(r_with) - mean(background) (a generic corpus).
    """
    r_with, r_no = _rows(r_with, "r_with"), _rows(r_no, "r_no")
    if r_with.dim() != 2 or r_with.shape != r_no.shape or r_with.shape[0] < 2:
        raise DataError(
            f"Need paired training activations (n >= 2, same shape), got {tuple(r_with.shape)} and "
            f"{tuple(r_no.shape)}. Fix: give at least two training samples with both responses."
        )
    diffmean = r_with.mean(0) - r_no.mean(0)
    if method == "diffmean":
        return diffmean
    if method == "pca":
        _, _, vh = torch.linalg.svd(r_with - r_no, full_matrices=False)
        pc1 = vh[0] * torch.sign((vh[0] * diffmean).sum())
        return pc1 * diffmean.norm()
    if method == "mean_center":
        if background is None or _rows(background, "background").dim() != 2:
            raise DataError("mean_center needs background activations (m, d). Fix: pass background=....")
        return r_with.mean(0) - _rows(background, "background").mean(0)
    raise ConfigError(f"Unknown axis method {method!r}. Fix: use diffmean, pca or mean_center.")


def decompose_concepts(components: Tensor, v_d: Tensor) -> tuple[Tensor, Tensor]:
    """d_i = <v^(i), a_d> and v_perp^(i) = v^(i) - d_i a_d for concept components v^(i) (rows) of v_d.

    When the components sum to v_d: sum_i d_i = |v_d| and sum_i v_perp^(i) = 0 ("normal balance").
    """
    comps, a_d = _rows(components, "components"), _unit(_rows(v_d, "v_d"), "v_d")
    d = comps @ a_d
    return d, comps - d[:, None] * a_d


def normal_plane(perps: Tensor, concept: int) -> Tensor:
    """Orthonormal basis (2, d) of P_d = span(a_perp^(c), PC1 of the other concepts' a_perp)."""
    perps = _rows(perps, "normal components")
    if perps.dim() != 2 or perps.shape[0] < 2:
        raise DataError("The normal plane needs at least two concept components. Fix: pass (k >= 2, d).")
    units = _unit(perps, "a normal component")
    first = units[concept]
    others = torch.cat([units[:concept], units[concept + 1 :]])
    _, _, vh = torch.linalg.svd(others, full_matrices=False)
    second = vh[0] - (vh[0] @ first) * first
    return torch.stack([first, _unit(second, "PC1 of the other normals within span(a_perp^(c))")])


@dataclass(frozen=True)
class Sector:
    """Normal-plane coefficients of a steering vector and whether it sits in c's sensitive sector."""

    beta: Tensor  # (k,) minimum-norm coefficients on the v_perp^(i)
    residual: Tensor  # eps: the normal part the v_perp^(i) do not span
    sensitive: bool  # beta_c > sum_{i != c} beta_i


def sector(v: Tensor, components: Tensor, v_d: Tensor, concept: int) -> Sector:
    """v_perp = sum_i beta_i v_perp^(i) + eps; sensitive sector iff beta_c > sum_{i != c} beta_i.

    The v_perp^(i) sum to zero, so beta is only defined up to adding a constant to every beta_i (the
    paper's non-identifiability); we report the minimum-norm solution, for which sum_i beta_i = 0.
    """
    v, a_d = _rows(v, "v"), _unit(_rows(v_d, "v_d"), "v_d")
    _, perps = decompose_concepts(components, v_d)
    v_perp = v - (v @ a_d) * a_d
    beta = torch.linalg.pinv(perps.T) @ v_perp
    residual = v_perp - perps.T @ beta
    others = beta.sum() - beta[concept]
    margin = float(beta[concept] - others)
    return Sector(beta=beta, residual=residual, sensitive=margin > 1e-9 * max(1.0, float(v_perp.norm())))


def first_length(labels: np.ndarray, lengths: np.ndarray, label: int) -> np.ndarray:
    """The smallest L whose label equals ``label`` along the last axis (NaN where it never occurs)."""
    labels = np.asarray(labels)
    if labels.shape[-1] != len(lengths):
        raise DataError(f"Labels have {labels.shape[-1]} steps but {len(lengths)} lengths. Fix: pass matching grids.")
    hit = labels == label
    index = hit.argmax(axis=-1)
    return np.where(hit.any(axis=-1), np.asarray(lengths, dtype=float)[index], np.nan)


def steerability(labels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """St = L_max - L at the first label 2 (0 where the concept never appears), along the last axis."""
    onset = first_length(labels, lengths, CONCEPT)
    return np.where(np.isnan(onset), 0.0, float(np.max(lengths)) - onset)


def steerability_slope(labels: np.ndarray) -> float:
    """The paper's alternative: slope of the label-2 ratio over samples against the step index (1-based)."""
    ratio = (np.asarray(labels) == CONCEPT).reshape(-1, np.asarray(labels).shape[-1]).mean(axis=0)
    return float(np.polyfit(np.arange(1, ratio.size + 1), ratio, 1)[0]) if ratio.size >= 2 else 0.0


def _pearson(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    result = stats.pearsonr(x, y)
    return float(result[0]), float(result[1])


@dataclass(frozen=True)
class UnimodalFit:
    """P2: best powers (k, m) of x = sin^m cos^(k-m) against y = St / n^k, and the direct quadratic check."""

    k: float
    m: float
    r: float
    p: float  # Pearson p-value of the best (k, m): optimistic, the powers were searched
    p_permutation: float  # the search redone on shuffled St: the honest p-value
    peak_theta_deg: float  # where sin^m cos^(k-m) peaks: tan^2 theta = m / (k - m)
    quad_curvature: float  # St ~ a theta^2 + b theta + c (theta in radians)
    quad_vertex_deg: float
    unimodal: bool  # the sin^m cos^(k-m) law holds: r > 0 with p_permutation < 0.05
    quad_peak_inside: bool  # descriptive only: concave quadratic whose vertex lies inside the observed angles


def _row_corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row of x with the same row of y (NaN for a constant row)."""
    xc, yc = x - x.mean(-1, keepdims=True), y - y.mean(-1, keepdims=True)
    denom = np.sqrt((xc**2).sum(-1) * (yc**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (xc * yc).sum(-1) / denom, np.nan)


def _best_power(x: np.ndarray, scale: np.ndarray, st: np.ndarray) -> tuple[float, int]:
    """Largest r over the (k, m) rows of x (against st * scale per row) and its row index."""
    r = _row_corr(x, st[None, :] * scale)
    if not np.isfinite(r).any():
        return float("nan"), -1
    best = int(np.nanargmax(r))
    return float(r[best]), best


def unimodality_fit(
    cos: np.ndarray,
    sin: np.ndarray,
    st: np.ndarray,
    norms: np.ndarray,
    *,
    ks: np.ndarray | None = None,
    permutations: int = 200,
    seed: int = 0,
) -> UnimodalFit:
    """Grid-search k (total power) and 0 < m < k maximising Pearson(sin^m cos^(k-m), St / norms^k) (P2).

    Only samples with cos > 0 are used (the law concerns the half-space the axis points into).
    """
    cos, sin, st, norms = (np.asarray(a, dtype=float) for a in (cos, sin, st, norms))
    keep = (cos > 0) & (norms > 0)
    if keep.sum() < 4:
        raise DataError(
            f"The angle law needs >= 4 samples with cos(theta) > 0, got {int(keep.sum())}. Fix: add samples."
        )
    cos, sin, st, logn = cos[keep], sin[keep], st[keep], np.log(norms[keep])
    ks = np.arange(0.5, 6.01, 0.5) if ks is None else np.asarray(ks, dtype=float)
    grid = np.array([(k, m) for k in ks for m in np.linspace(0, k, 9)[1:-1]])
    logs, logc = np.log(np.clip(sin, _EPS, None)), np.log(np.clip(cos, _EPS, None))
    x = np.exp(grid[:, 1:2] * logs + (grid[:, 0:1] - grid[:, 1:2]) * logc)
    scale = np.exp(-grid[:, 0:1] * logn)
    r, best = _best_power(x, scale, st)
    k, m = (float(grid[best, 0]), float(grid[best, 1])) if best >= 0 else (float("nan"), float("nan"))
    p = _pearson(x[best], st * scale[best])[1] if best >= 0 else float("nan")
    rng = np.random.default_rng(seed)
    null = np.array([_best_power(x, scale, rng.permutation(st))[0] for _ in range(permutations)])
    p_perm = (1 + int(np.sum(null >= r))) / (1 + permutations) if np.isfinite(r) else float("nan")
    theta = np.arctan2(sin, cos)
    curvature, vertex = float("nan"), float("nan")
    if np.ptp(theta) > 0 and np.ptp(st) > 0:
        a, b, _ = np.polyfit(theta, st, 2)
        curvature, vertex = float(a), float(-b / (2 * a)) if a != 0 else float("nan")
    inside = bool(np.isfinite(vertex) and theta.min() < vertex < theta.max())
    return UnimodalFit(
        k=k,
        m=m,
        r=r,
        p=p,
        p_permutation=float(p_perm),
        peak_theta_deg=float(np.degrees(np.arctan(np.sqrt(m / (k - m))))),
        quad_curvature=curvature,
        quad_vertex_deg=float(np.degrees(vertex)),
        unimodal=bool(np.isfinite(r) and r > 0 and p_perm < 0.05),
        quad_peak_inside=inside and curvature < 0,
    )


@dataclass(frozen=True)
class PairwiseResult:
    """P3: does cos(v_d,i, v_d,j) predict |St_i - St_j| over pairs in the same group?"""

    cos: np.ndarray
    gap: np.ndarray
    r: float
    p: float
    n_pairs: int


def pairwise_predictability(v_d: Tensor, st: np.ndarray, groups: np.ndarray | None = None) -> PairwiseResult:
    """Pearson r (and p) between pairwise cosine similarity and |St_i - St_j|, pairs within a group only.

    Pairs share samples, so the p-value treats dependent pairs as independent (as the paper does).
    """
    units = _unit(_rows(v_d, "v_d"), "v_d").numpy()
    st = np.asarray(st, dtype=float)
    if units.shape[0] != st.size:
        raise DataError(f"{units.shape[0]} vectors but {st.size} steerabilities. Fix: pass one St per v_d.")
    groups = np.zeros(st.size, dtype=int) if groups is None else np.asarray(groups)
    i, j = np.triu_indices(st.size, k=1)
    same = groups[i] == groups[j]
    i, j = i[same], j[same]
    cos = (units[i] * units[j]).sum(-1)
    gap = np.abs(st[i] - st[j])
    r, p = _pearson(cos, gap)
    return PairwiseResult(cos=cos, gap=gap, r=r, p=p, n_pairs=int(i.size))


@dataclass(frozen=True)
class SpiralFit:
    """Spiral probe: PCA(k) of the difference vectors, least-squares mapped onto (t, cos 2 pi t, sin 2 pi t)."""

    pcs: np.ndarray  # (n, k) principal-component coordinates
    explained: np.ndarray  # (k,) explained variance ratios
    fitted: np.ndarray  # (n, 3) the linear map applied to the PCs
    target: np.ndarray  # (n, 3) the spiral coordinates of t
    r2: float  # 1 - SSE / SST of the fit over the three coordinates


def spiral_probe(v_d: Tensor, t: np.ndarray, k: int = 5, radius: float = 1.0) -> SpiralFit:
    """PCA(k) of v_d, then the affine least-squares map to the spiral (t, r cos 2 pi t, r sin 2 pi t)."""
    x = _rows(v_d, "v_d").numpy()
    t = np.asarray(t, dtype=float)
    if x.shape[0] != t.size or x.shape[0] < 3:
        raise DataError(f"Spiral probe needs >= 3 vectors with one t each, got {x.shape[0]} and {t.size}.")
    centred = x - x.mean(0)
    _, s, vh = np.linalg.svd(centred, full_matrices=False)
    k = min(k, vh.shape[0])
    pcs = centred @ vh[:k].T
    target = np.stack([t, radius * np.cos(2 * np.pi * t), radius * np.sin(2 * np.pi * t)], axis=1)
    design = np.hstack([pcs, np.ones((pcs.shape[0], 1))])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    fitted = design @ coef
    sst = float(((target - target.mean(0)) ** 2).sum())
    r2 = 1.0 - float(((target - fitted) ** 2).sum()) / sst if sst > 0 else float("nan")
    return SpiralFit(pcs=pcs, explained=(s[:k] ** 2) / float((s**2).sum()), fitted=fitted, target=target, r2=r2)


@dataclass(frozen=True)
class DelayResult:
    """P1: does the penalty rho push the first occurrence of a label to larger L?"""

    label: int
    mean_by_rho: list[float]  # mean first L (censored: never = one step beyond the grid)
    reached_by_rho: list[float]  # fraction of samples where the label occurs at all
    spearman_r: float  # between rho and the censored first L, over every (sample, rho)
    spearman_p: float
    delayed: bool  # spearman_r > 0 with p < 0.05


def penalty_delay(labels: np.ndarray, lengths: np.ndarray, rhos: np.ndarray, label: int) -> DelayResult:
    """Onset (label 2) or collapse (label 3) delay under the penalty; ``labels`` is (n, steps, n_rho)."""
    labels, lengths, rhos = np.asarray(labels), np.asarray(lengths, dtype=float), np.asarray(rhos, dtype=float)
    if labels.ndim != 3 or labels.shape[1:] != (lengths.size, rhos.size):
        raise DataError(f"Labels {labels.shape} do not match (n, {lengths.size}, {rhos.size}). Fix: pass the grids.")
    first = first_length(np.moveaxis(labels, 2, 1), lengths, label)  # (n, n_rho)
    beyond = lengths.max() + (lengths[-1] - lengths[-2] if lengths.size > 1 else lengths.max())
    censored = np.where(np.isnan(first), beyond, first)
    x, y = np.broadcast_to(rhos, censored.shape).ravel(), censored.ravel()
    r, p = (float("nan"), float("nan"))
    if np.ptp(x) > 0 and np.ptp(y) > 0:
        result = stats.spearmanr(x, y)
        r, p = float(result[0]), float(result[1])
    return DelayResult(
        label=label,
        mean_by_rho=censored.mean(0).tolist(),
        reached_by_rho=(~np.isnan(first)).mean(0).tolist(),
        spearman_r=r,
        spearman_p=p,
        delayed=bool(np.isfinite(r) and r > 0 and p < 0.05),
    )

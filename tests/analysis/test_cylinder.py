"""CRH geometry on constructed vectors whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from saesteer.analysis import cylinder as crh
from saesteer.errors import ConfigError, DataError, VectorError


def e(i: int, d: int = 4) -> torch.Tensor:
    v = torch.zeros(d, dtype=torch.float64)
    v[i] = 1.0
    return v


def test_angles_of_known_vectors():
    u = 3 * e(0)
    v_d = torch.stack([e(0) * 2, e(1), e(0) + e(1), -e(0) + math.sqrt(3) * e(1)])
    cos, sin = crh.angles(v_d, u)
    assert torch.allclose(cos, torch.tensor([1.0, 0.0, 1 / math.sqrt(2), -0.5], dtype=torch.float64))
    assert torch.allclose(sin, torch.tensor([0.0, 1.0, 1 / math.sqrt(2), math.sqrt(3) / 2], dtype=torch.float64))


def test_zero_vector_has_no_angle():
    with pytest.raises(VectorError, match="Fix:"):
        crh.angles(torch.zeros(4), e(0))


def test_normal_direction_is_unit_orthogonal_and_zero_on_the_axis():
    u = e(0)
    e_perp = crh.normal_direction(torch.stack([2 * e(0) + 3 * e(2), 5 * e(0)]), u)
    assert torch.allclose(e_perp[0], e(2))
    assert torch.equal(e_perp[1], torch.zeros(4, dtype=torch.float64))


def test_penalised_vector_components_and_limits():
    u, v_d = 2 * e(0), 3 * e(0) + 4 * e(1)  # cos 0.6, sin 0.8, e_perp = e1
    assert torch.allclose(crh.penalised_vector(u, v_d, 5.0, 0.0), v_d)  # rho 0: L * v_d / |v_d|, |v_d| = 5
    assert torch.allclose(crh.penalised_vector(u, v_d, 5.0, 1.0), 3 * e(0))  # rho 1: axis part only
    half = crh.penalised_vector(u, v_d, 10.0, 0.5)
    assert torch.allclose(half, 6 * e(0) + 4 * e(1))
    parts = crh.decompose(half, u, v_d)
    assert torch.allclose(parts.axis, 6 * e(0)) and torch.allclose(parts.normal, 4 * e(1))
    assert torch.allclose(parts.rest, torch.zeros(4, dtype=torch.float64))


def test_decompose_parts_sum_to_the_vector_and_rest_is_orthogonal():
    gen = torch.Generator().manual_seed(0)
    u, v_d, v = (torch.randn(16, generator=gen, dtype=torch.float64) for _ in range(3))
    parts = crh.decompose(v, u, v_d)
    assert torch.allclose(parts.axis + parts.normal + parts.rest, v)
    assert abs(float(parts.rest @ u)) < 1e-9 and abs(float(parts.rest @ crh.normal_direction(v_d, u))) < 1e-9


def test_penalised_grid_shape_and_rho_validation():
    u, v_d = e(0), torch.stack([e(0) + e(1), e(0) + e(2)])
    grid = crh.penalised_grid(u, v_d, [1.0, 2.0, 3.0], [0.0, 1.0])
    assert grid.shape == (2, 3, 2, 4)
    assert torch.allclose(grid[1, 2, 0], 3 * (e(0) + e(2)) / math.sqrt(2))
    with pytest.raises(ConfigError, match="Fix:"):
        crh.penalised_grid(u, v_d, [1.0], [1.5])


def test_population_axes():
    r_no = torch.zeros(3, 4, dtype=torch.float64)
    r_with = torch.stack([e(0) + e(1), e(0) - e(1), 2 * e(0)])
    assert torch.allclose(crh.population_axis(r_with, r_no), 4 / 3 * e(0))
    pca = crh.population_axis(r_with, r_no, "pca")
    assert torch.allclose(pca, 4 / 3 * e(0))  # PC1 of the differences is e0 (signed like DiffMean)
    background = torch.stack([e(3), -e(3), e(2)])
    assert torch.allclose(crh.population_axis(r_with, r_no, "mean_center", background), 4 / 3 * e(0) - e(2) / 3)
    with pytest.raises(ConfigError):
        crh.population_axis(r_with, r_no, "probe")  # type: ignore[arg-type]


def test_concept_decomposition_sums_and_normal_balance():
    gen = torch.Generator().manual_seed(1)
    components = torch.randn(5, 8, generator=gen, dtype=torch.float64)  # non-orthogonal concepts
    v_d = components.sum(0)
    d, perps = crh.decompose_concepts(components, v_d)
    assert math.isclose(float(d.sum()), float(v_d.norm()), rel_tol=1e-9)
    assert torch.allclose(perps.sum(0), torch.zeros(8, dtype=torch.float64), atol=1e-9)


def test_normal_plane_is_orthonormal_and_contains_own_normal():
    components = torch.stack([e(0), e(1), e(2)])
    _, perps = crh.decompose_concepts(components, components.sum(0))
    plane = crh.normal_plane(perps, 0)
    assert torch.allclose(plane @ plane.T, torch.eye(2, dtype=torch.float64), atol=1e-9)
    own = perps[0] / perps[0].norm()
    assert torch.allclose(plane.T @ (plane @ own), own)


def test_sector_membership_of_known_steering_vectors():
    components = torch.stack([e(0), e(1), e(2)])
    v_d = components.sum(0)
    _, perps = crh.decompose_concepts(components, v_d)
    toward = crh.sector(v_d + 2 * perps[0], components, v_d, 0)
    away = crh.sector(v_d - 2 * perps[0], components, v_d, 0)
    assert toward.sensitive and not away.sensitive
    assert torch.allclose(toward.beta, torch.tensor([4 / 3, -2 / 3, -2 / 3], dtype=torch.float64))
    assert float(toward.residual.norm()) < 1e-9
    off_plane = crh.sector(v_d + e(3), components, v_d, 0)  # e3 is outside every concept: all residual
    assert torch.allclose(off_plane.residual, e(3)) and not off_plane.sensitive


def test_steerability_from_labels():
    lengths = np.array([1.0, 2.0, 3.0, 4.0])
    labels = np.array([[1, 2, 2, 3], [1, 1, 1, 3], [2, 3, 3, 3], [1, 1, 1, 2]])
    assert np.allclose(crh.steerability(labels, lengths), [2.0, 0.0, 3.0, 0.0])
    assert np.allclose(crh.first_length(labels, lengths, 3), [4.0, 4.0, 2.0, np.nan], equal_nan=True)
    assert crh.steerability_slope(np.array([[1, 2, 2], [1, 1, 2]])) == pytest.approx(0.5)
    with pytest.raises(DataError):
        crh.steerability(labels, lengths[:3])


def test_unimodality_recovers_a_planted_angle_law():
    rng = np.random.default_rng(0)
    theta = rng.uniform(0.05, 1.5, 60)
    norms = rng.uniform(1.0, 2.0, 60)
    st = np.sin(theta) ** 1 * np.cos(theta) ** 2 * norms**3 * (1 + 0.02 * rng.standard_normal(60))
    fit = crh.unimodality_fit(np.cos(theta), np.sin(theta), st, norms, permutations=50)
    assert fit.unimodal and fit.r > 0.95 and fit.p_permutation < 0.05
    assert (fit.k, fit.m) == pytest.approx((3.0, 1.125), abs=0.4)
    assert 25 < fit.peak_theta_deg < 45 and fit.quad_curvature < 0 and fit.quad_peak_inside
    noise = crh.unimodality_fit(np.cos(theta), np.sin(theta), rng.permutation(st), norms, permutations=50)
    assert noise.r < fit.r and noise.p_permutation > 0.05 and not noise.unimodal


def test_pairwise_predictability_detects_a_planted_relation_and_respects_groups():
    gen = torch.Generator().manual_seed(2)
    base = torch.randn(8, dtype=torch.float64, generator=gen)
    other = torch.randn(8, dtype=torch.float64, generator=gen)
    mix = np.linspace(0, 1, 12)
    v_d = torch.stack([base * (1 - t) + other * t for t in mix])
    st = 10 * mix  # far-apart vectors differ most in St: the cosine predicts the gap
    result = crh.pairwise_predictability(v_d, st)
    assert result.n_pairs == 66 and result.r < -0.8 and result.p < 1e-6
    grouped = crh.pairwise_predictability(v_d, st, groups=np.array([0] * 6 + [1] * 6))
    assert grouped.n_pairs == 30


def test_spiral_probe_fits_points_on_a_spiral():
    t = np.linspace(0, 1, 40, endpoint=False)
    basis = np.linalg.qr(np.random.default_rng(3).standard_normal((32, 3)))[0].T
    points = np.stack([t, np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)], axis=1) @ basis
    fit = crh.spiral_probe(torch.tensor(points), t)
    assert fit.r2 > 0.999 and fit.pcs.shape == (40, 5)
    scrambled = crh.spiral_probe(torch.tensor(points), np.random.default_rng(4).permutation(t))
    assert scrambled.r2 < 0.5


def test_penalty_delay_on_constructed_label_grids():
    lengths, rhos = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 0.5, 1.0])
    labels = np.ones((6, 4, 3), dtype=int)
    for rho_index in range(3):  # onset at step rho_index, collapse one step later (none at rho = 1)
        labels[:, rho_index, rho_index] = 2
        if rho_index < 2:
            labels[:, rho_index + 1 :, rho_index] = 3
    onset = crh.penalty_delay(labels, lengths, rhos, crh.CONCEPT)
    assert onset.mean_by_rho == [1.0, 2.0, 3.0] and onset.delayed
    collapse = crh.penalty_delay(labels, lengths, rhos, crh.GIBBERISH)
    assert collapse.mean_by_rho == [2.0, 3.0, 5.0] and collapse.reached_by_rho == [1.0, 1.0, 0.0]
    assert collapse.delayed
    flat = crh.penalty_delay(np.ones((6, 4, 3), dtype=int), lengths, rhos, crh.CONCEPT)
    assert not flat.delayed and np.isnan(flat.spearman_r)
    early = crh.penalty_delay(labels[:, :, ::-1], lengths, rhos, crh.CONCEPT)
    assert early.spearman_r < 0 and not early.delayed

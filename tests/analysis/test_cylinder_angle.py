"""CRH P2 as sincos_rel.py computes it: per-concept slope steerability, the (a, p) grid and the sample filters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saesteer.analysis import cylinder as crh
from saesteer.analysis.cylinder_angle import AngleSamples, angle_law_fit, angle_samples
from saesteer.analysis.cylinder_sweep import ConceptRun, angle_law_summary
from saesteer.errors import DataError


def planted(n: int = 12, seed: int = 0, power: float = 2.0, cos_power: float = -1.0) -> AngleSamples:
    """One sample per concept with St = |u|^power sin^power cos^cos_power (the law the search should find)."""
    rng = np.random.default_rng(seed)
    theta, norm_u = rng.uniform(0.2, 1.2, n), rng.uniform(0.5, 3.0, n)
    st = norm_u**power * np.sin(theta) ** power * np.cos(theta) ** cos_power
    return AngleSamples(np.cos(theta), np.sin(theta), st, norm_u, np.arange(n), 0, 0)


def test_the_code_default_sin2_over_cos_is_reachable_and_chosen_on_data_that_follow_it():
    fit = angle_law_fit(planted(), permutations=50)
    assert (fit.sin_power, fit.cos_power) == pytest.approx((2.0, -1.0))
    assert (fit.power, fit.p) == pytest.approx((2.0, 0.5))
    assert fit.r == pytest.approx(1.0) and fit.r_default == pytest.approx(1.0)
    assert fit.holds and fit.p_permutation < 0.05
    assert 2.0 in fit.powers and len(fit.powers) == len(fit.r_by_power)


def test_the_search_moves_off_the_default_when_the_data_follow_another_law():
    fit = angle_law_fit(planted(power=3.0, cos_power=1.0), permutations=0)
    assert (fit.power, fit.cos_power) == pytest.approx((3.0, 1.0)) and fit.r_default < fit.r


def test_permutation_p_is_honest_for_unrelated_steerability():
    data = planted(n=10)
    shuffled = AngleSamples(
        data.cos, data.sin, np.random.default_rng(3).permutation(data.st), data.norm_u, data.groups, 0, 0
    )
    fit = angle_law_fit(shuffled, permutations=100)
    assert fit.p_permutation > 0.05 and not fit.holds


def test_one_steerability_per_concept_and_first_step_concept_samples_are_dropped():
    labels = [
        np.array([[1, 1, 2, 2], [2, 2, 2, 2], [1, 2, 2, 2]]),  # sample 1 shows the concept at step 1
        np.array([[1, 1, 1, 1], [1, 1, 1, 1]]),  # never steered: St = 0
        np.array([[1, 1, 1, 2], [1, 1, 2, 2]]),
    ]
    cos = [np.array([0.9, 0.8, 0.7]), np.array([0.6, 0.5]), np.array([0.95, 0.85])]
    sin = [np.sqrt(1 - c**2) for c in cos]
    data = angle_samples(labels, cos, sin, [1.0, 2.0, 3.0])
    assert data.dropped_first_step == 1 and data.dropped_zero == 2
    assert data.groups.tolist() == [0, 0, 2, 2] and data.cos.tolist() == [0.9, 0.7, 0.95, 0.85]
    kept = crh.steerability_slope(labels[0][[0, 2]])
    assert data.st.tolist() == pytest.approx([kept, kept, 0.35, 0.35])
    assert kept != pytest.approx(crh.steerability_slope(labels[0]))  # the dropped sample would change St
    everything = angle_samples(
        labels, cos, sin, [1.0, 2.0, 3.0], drop_first_step_concept=False, drop_zero_steerability=False
    )
    assert everything.st.size == 7 and everything.dropped_first_step == everything.dropped_zero == 0


def test_too_few_concepts_and_bad_shapes_name_the_fix():
    one = planted(n=4)
    with pytest.raises(DataError, match="Fix:"):
        angle_law_fit(AngleSamples(one.cos, one.sin, one.st, one.norm_u, np.zeros(4, dtype=int), 0, 0))
    with pytest.raises(DataError, match="Fix:"):
        angle_samples([np.ones((2, 3))], [np.ones(3)], [np.zeros(3)], [1.0])


def _run(labels: np.ndarray, theta: np.ndarray, norm_u: float) -> ConceptRun:
    n, steps = labels.shape
    u = torch.tensor([norm_u, 0.0], dtype=torch.float64)
    v_d = torch.stack([torch.cos(torch.tensor(theta)), torch.sin(torch.tensor(theta))], dim=1).double()
    cos, sin = crh.angles(v_d, u)
    return ConceptRun(
        concept="c",
        questions=["q"] * n,
        u=u,
        v_d=v_d,
        v_d_train=v_d,
        cos=cos,
        sin=sin,
        lengths=list(np.linspace(1.0, steps, steps) * norm_u),
        rhos=[0.0],
        labels=labels[:, :, None],
        outputs=[],
        baseline_labels=[1] * n,
        baseline_outputs=[""] * n,
    )


def test_summary_defaults_to_the_official_variant_and_keeps_the_per_sample_one_as_an_option():
    rng = np.random.default_rng(1)
    runs = []
    for k in range(5):
        onset = 1 + k % 4
        labels = np.array([[1] * onset + [2] * (6 - onset)] * 4)
        runs.append(_run(labels, rng.uniform(0.2, 1.2, 4), 1.0 + k))
    official = angle_law_summary(runs, permutations=20)
    assert official is not None and official["variant"].startswith("official") and "cos_power" in official
    assert official["n_concepts"] == 5 and official["n_samples"] == 20
    legacy = angle_law_summary(runs, "per_sample", permutations=20)
    assert legacy is not None and legacy["variant"].startswith("per_sample") and "k" in legacy

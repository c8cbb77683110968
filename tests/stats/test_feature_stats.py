"""FeatureStats: exact streaming/merged sums, Pearson vs scipy, CorrSteer coefficients, persistence, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import pearsonr

from saesteer.errors import ConfigError, DataError, StoreError
from saesteer.stats import FeatureStats

LAYERS = (3, 5, 7)
RAW = ("sum_x", "sum_xx", "sum_xy", "sum_y", "sum_yy", "sum_x_pos")


def make_data(n: int, d: int = 16, seed: int = 0, binary: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse ReLU-like activations (N, L, D) in float32 where features 0-2 correlate with y."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.4).float() if binary else torch.rand(n, generator=g)
    x = torch.relu(torch.randn(n, len(LAYERS), d, generator=g))
    x[:, :, 0] += 2.0 * y[:, None]
    x[:, :, 1] += 0.5 * y[:, None]
    x[:, :, 2] = torch.relu(x[:, :, 2] - 1.5 * y[:, None])
    return x, y


def one_pass(x: torch.Tensor, y: torch.Tensor) -> FeatureStats:
    stats = FeatureStats.empty(LAYERS, x.shape[-1])
    stats.update(x, y)
    return stats


def assert_same(a: FeatureStats, b: FeatureStats) -> None:
    assert (a.n, a.n_pos) == (b.n, b.n_pos)
    for name in RAW:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.pearson(), b.pearson(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.means(), b.means(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.coefficients(), b.coefficients(), rtol=1e-12, atol=1e-12)


def test_merge_of_three_shards_equals_single_pass() -> None:
    x, y = make_data(300)
    shards = [one_pass(x[a:b], y[a:b]) for a, b in [(0, 70), (70, 71), (71, 300)]]
    merged = shards[0].merge(shards[1]).merge(shards[2])
    assert_same(merged, one_pass(x, y))
    assert merged.sum_x.dtype == torch.float64
    assert shards[0].n == 70  # merge returns a new object and leaves its inputs alone


def test_streaming_updates_equal_single_pass() -> None:
    x, y = make_data(120, seed=1)
    stats = FeatureStats.empty(LAYERS, x.shape[-1])
    for start in range(0, 120, 25):
        stats.update(x[start : start + 25], y[start : start + 25])
    assert_same(stats, one_pass(x, y))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(min_value=2, max_value=60), cut=st.floats(min_value=0.0, max_value=1.0), seed=st.integers(0, 99))
def test_merge_property_any_split(n: int, cut: float, seed: int) -> None:
    x, y = make_data(n, d=6, seed=seed, binary=seed % 2 == 0)
    y[0] = 1.0  # at least one positive sample so coefficients are defined
    split = round(cut * n)
    assert_same(one_pass(x[:split], y[:split]).merge(one_pass(x[split:], y[split:])), one_pass(x, y))


@pytest.mark.parametrize("binary", [True, False])
def test_pearson_matches_scipy(binary: bool) -> None:
    x, y = make_data(400, d=8, seed=2, binary=binary)
    r = one_pass(x, y).pearson()
    assert r.shape == (len(LAYERS), 8) and r.dtype == torch.float64
    x64, y64 = x.double().numpy(), y.double().numpy()
    for layer in range(len(LAYERS)):
        for feature in range(8):
            expected = pearsonr(x64[:, layer, feature], y64).statistic
            assert r[layer, feature].item() == pytest.approx(expected, abs=1e-9)
    assert (r[:, 0] > 0.5).all() and (r[:, 2] < -0.2).all()


def test_constant_feature_gives_zero_and_no_nan() -> None:
    x, y = make_data(50, d=4, seed=3)
    x[:, :, 1] = 0.0
    x[:, :, 2] = 3.7
    r = one_pass(x, y).pearson()
    assert torch.isfinite(r).all()
    assert (r[:, 1] == 0).all() and (r[:, 2] == 0).all()
    assert (r[:, 0] != 0).all()


def test_constant_reward_gives_zero() -> None:
    x, _ = make_data(20, d=4, seed=4)
    r = one_pass(x, torch.ones(20)).pearson()
    assert torch.isfinite(r).all() and (r == 0).all()


def test_coefficients_include_zeros_and_means() -> None:
    stats = FeatureStats.empty([0], 2)
    x = torch.tensor([[4.0, 1.0], [0.0, 1.0], [2.0, 0.0], [6.0, 5.0]])  # (B, D) form for one layer
    stats.update(x, torch.tensor([1.0, 1.0, 0.5, 0.0]))
    # Positive samples are rows 0-2 (y > 0); feature 0 is inactive on row 1 and still counts.
    torch.testing.assert_close(stats.coefficients(), torch.tensor([[2.0, 2.0 / 3.0]], dtype=torch.float64))
    torch.testing.assert_close(stats.means(), torch.tensor([[3.0, 1.75]], dtype=torch.float64))
    assert (stats.n, stats.n_pos) == (4, 3)


def test_coefficients_without_positive_samples_raise() -> None:
    stats = one_pass(*make_data(5, d=4))
    stats.n_pos = 0
    with pytest.raises(DataError, match="Fix:"):
        stats.coefficients()


def test_empty_stats_raise() -> None:
    stats = FeatureStats.empty(LAYERS, 4)
    for method in (stats.pearson, stats.means):
        with pytest.raises(DataError, match="Fix:"):
            method()


def test_top_features_positive_sorted_and_limited() -> None:
    x, y = make_data(400, d=8, seed=5)
    stats = one_pass(x, y)
    r = stats.pearson()
    top = stats.top_features(3)
    assert set(top) == set(LAYERS)
    for row, layer in enumerate(LAYERS):
        picked = top[layer]
        assert len(picked) == min(3, int((r[row] > 0).sum()))
        values = [value for _, value in picked]
        assert all(value > 0 for value in values) and values == sorted(values, reverse=True)
        assert picked[0][0] == 0
        assert values == [r[row, index].item() for index, _ in picked]
        best = sorted(r[row][r[row] > 0].tolist(), reverse=True)[:3]
        assert values == best
        assert all(index != 2 for index, _ in picked)  # negatively correlated feature is excluded
    both = stats.top_features(2, positive_only=False)
    assert {index for index, _ in both[LAYERS[0]]} == {0, 2}  # |r| ranking admits the negative feature


def test_top_features_fewer_than_k() -> None:
    stats = FeatureStats.empty([1], 3)
    y = torch.tensor([0.0, 1.0, 0.0, 1.0])
    x = torch.stack([y, 1 - y, torch.zeros(4)], dim=1)  # r = +1, -1, 0
    stats.update(x, y)
    assert [index for index, _ in stats.top_features(5)[1]] == [0]
    with pytest.raises(ConfigError, match="Fix:"):
        stats.top_features(0)


def test_tensors_round_trip_through_safetensors() -> None:
    from safetensors.torch import load, save

    stats = one_pass(*make_data(40, d=5, seed=6))
    tensors = stats.to_tensors()
    assert tensors["layers"].dtype == torch.int64 and tensors["layers"].tolist() == list(LAYERS)
    restored = FeatureStats.from_tensors(load(save(tensors)))
    assert restored.layers == LAYERS
    assert_same(restored, stats)
    tensors["sum_x"].zero_()
    assert stats.sum_x.abs().sum() > 0  # to_tensors returns copies


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("sum_xy", None, "lacks"),
        ("layers", None, "lacks"),
        ("sum_xx", torch.zeros(3, 4, dtype=torch.float64), "shape"),
        ("sum_x", torch.zeros(2, 5, dtype=torch.float64), "shape"),
        ("sum_y", torch.zeros(2, dtype=torch.float64), "scalar"),
        ("layers", torch.tensor([3, 3, 7]), "distinct"),
        ("n_pos", torch.tensor(1000), "inconsistent"),
    ],
)
def test_corrupt_tensors_raise_store_error(key: str, value: torch.Tensor | None, message: str) -> None:
    tensors = one_pass(*make_data(10, d=5)).to_tensors()
    if value is None:
        del tensors[key]
    else:
        tensors[key] = value
    with pytest.raises(StoreError, match=message) as info:
        FeatureStats.from_tensors(tensors)
    assert "Fix:" in str(info.value)


def test_update_rejects_bad_input() -> None:
    stats = FeatureStats.empty(LAYERS, 4)
    with pytest.raises(DataError, match=r"shape \(2, 3, 5\).*\(B, 3, 4\).*Fix:"):
        stats.update(torch.zeros(2, 3, 5), torch.zeros(2))
    with pytest.raises(DataError, match="Fix:"):
        stats.update(torch.zeros(2, 4), torch.zeros(2))  # (B, D) is only allowed for one layer
    with pytest.raises(DataError, match=r"y has shape \(3,\).*Fix:"):
        stats.update(torch.zeros(2, 3, 4), torch.zeros(3))
    x = torch.zeros(2, 3, 4)
    x[1, 2, 3] = float("nan")
    with pytest.raises(DataError, match=r"NaN.*Fix:"):
        stats.update(x, torch.zeros(2))
    with pytest.raises(DataError, match=r"NaN.*Fix:"):
        stats.update(torch.zeros(2, 3, 4), torch.tensor([0.0, float("inf")]))
    assert stats.n == 0 and stats.sum_x.abs().sum() == 0  # rejected batches leave no trace


def test_update_accumulates_low_precision_input_in_float64() -> None:
    x, y = make_data(30, d=4, seed=7)
    stats = one_pass(x.to(torch.bfloat16), y.to(torch.bfloat16))
    assert stats.sum_x.dtype == torch.float64
    torch.testing.assert_close(stats.sum_x, x.to(torch.bfloat16).double().sum(0), rtol=1e-12, atol=1e-12)


def test_mismatched_merge_and_bad_config_raise() -> None:
    stats = FeatureStats.empty(LAYERS, 4)
    with pytest.raises(ConfigError, match="Fix:"):
        stats.merge(FeatureStats.empty((3, 5), 4))
    with pytest.raises(ConfigError, match="Fix:"):
        stats.merge(FeatureStats.empty(LAYERS, 5))
    with pytest.raises(ConfigError, match="Fix:"):
        FeatureStats.empty((3, 3), 4)
    with pytest.raises(ConfigError, match="Fix:"):
        FeatureStats.empty(LAYERS, 0)


def test_all_reduce_is_noop_without_process_group() -> None:
    assert not (torch.distributed.is_available() and torch.distributed.is_initialized())
    stats = one_pass(*make_data(25, d=4, seed=8))
    before = stats.to_tensors()
    stats.all_reduce()
    after = stats.to_tensors()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key

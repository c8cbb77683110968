"""CorrSteer on the real model with the SAE saesteer trained (session fixture, layer 8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from saesteer.engines import corrsteer
from saesteer.engines.corrsteer import SelectedFeature
from saesteer.engines.corrsteer.harvest import _pool
from saesteer.errors import ConfigError
from saesteer.stats import FeatureStats
from saesteer.store import Store
from saesteer.tasks import capitals_task, rewards, run_task


def test_pooling_ignores_steps_after_eos():
    latents = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]]])
    valid = torch.tensor([[True, True, False]])
    assert _pool(latents, valid, "max").tolist() == [[3.0, 2.0]]
    assert _pool(latents, valid, "mean").tolist() == [[2.0, 1.0]]


def test_selection_is_positive_only_and_variants_differ():
    stats = FeatureStats.empty([3, 7], 4)
    y = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    x = torch.zeros(6, 2, 4)
    x[:, 0, 1] = y * 2 + torch.tensor([0.1, 0.0, 0.3, 0.2, 0.0, 0.1])  # strong positive at layer 3
    x[:, 0, 2] = 1 - y  # negative: never selected
    x[:, 1, 3] = y + torch.tensor([0.9, 0.0, 0.5, 0.2, 0.4, 0.8])  # weaker positive at layer 7
    stats.update(x, y)
    chosen, ranked = corrsteer.select(stats, "A")
    assert [(f.layer, f.feature) for f in chosen] == [(3, 1), (7, 3)]
    assert all(r > 0 for features in ranked.values() for _, r in features)
    single, _ = corrsteer.select(stats, "S")
    assert [(f.layer, f.feature) for f in single] == [(3, 1)]
    assert chosen[0].coefficient == pytest.approx(float(x[y > 0, 0, 1].mean()))
    with pytest.raises(ConfigError):
        corrsteer.select(stats, "Z")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fitted(smollm2, smollm2_sae):
    model, tokenizer = smollm2
    sae, _ = smollm2_sae
    return corrsteer.fit_features(
        model, tokenizer, capitals_task(), {8: sae}, variant="A", samples=32, batch_size=16, progress=False
    )


def test_streaming_statistics_equal_a_batch_computation(smollm2, smollm2_sae, fitted):
    model, tokenizer = smollm2
    task = capitals_task()
    samples = task.samples("train")[:32]
    xs, ys = [], []
    for start in range(0, 32, 16):
        done, pooled = corrsteer.generate_and_read(
            model,
            tokenizer,
            task,
            samples[start : start + 16],
            {8: smollm2_sae[0]},
            hook_point="resid_post",
            pool="max",
        )
        xs.append(pooled[:, 0])
        ys.extend(rewards(task, samples[start : start + 16], done.texts))
    x = torch.cat(xs).double().numpy()
    stats = fitted.harvest.stats
    assert stats.n == 32 and 0 < stats.n_pos < 32, "the capitals reward must vary on the bundled model"
    r = stats.pearson()[0].numpy()
    varying = np.flatnonzero(x.std(axis=0) > 1e-6)
    expected = np.array([pearsonr(x[:, j], ys)[0] for j in varying])
    np.testing.assert_allclose(r[varying], expected, atol=1e-6)
    np.testing.assert_allclose(stats.coefficients()[0].numpy(), x[np.array(ys) > 0].mean(axis=0), atol=1e-6)


def test_artifact_steers_at_corrsteer_positions_with_c_times_decoder_row(smollm2, smollm2_sae, fitted):
    feature = fitted.artifact.features[0]
    assert feature.r > 0 and feature.layer == 8
    (item,) = fitted.artifact.interventions()
    assert item.positions.name == "prompt_and_generated_last" and item.hook_point == "resid_post"
    expected = feature.coefficient * smollm2_sae[0].W_dec[feature.feature].detach()
    torch.testing.assert_close(item.operator.vector.reshape(-1), expected, rtol=1e-5, atol=1e-6)
    model, tokenizer = smollm2
    test = capitals_task().samples("test")[:8]
    pushed = run_task(model, tokenizer, capitals_task(), test, steering=fitted.artifact.interventions(alpha=80.0))
    plain = run_task(model, tokenizer, capitals_task(), test)
    assert [p.generation for p in pushed] != [p.generation for p in plain]


def test_save_and_load_through_the_store(tmp_path, fitted):
    store = Store(tmp_path)
    stats = corrsteer.StatsCompanion(fitted.harvest.stats, "capitals", "max", fitted.artifact.model_id, "resid_post")
    store.save("capitals-A", fitted.artifact, companions=[stats])
    loaded = store.load("capitals-A")
    assert loaded.features == fitted.artifact.features
    torch.testing.assert_close(loaded.vectors()[8], fitted.artifact.vectors()[8])
    assert store.top_features("capitals", fitted.artifact.model_id, 8, k=1)[0][0] == fitted.artifact.features[0].feature
    assert isinstance(loaded.features[0], SelectedFeature)


def test_variant_p_validates_each_layer(smollm2, smollm2_sae):
    model, tokenizer = smollm2
    result = corrsteer.fit_features(
        model,
        tokenizer,
        capitals_task(),
        {8: smollm2_sae[0]},
        variant="P",
        samples=16,
        batch_size=16,
        val_limit=8,
        progress=False,
    )
    validation = result.validation
    assert set(validation["per_layer"]) == {8} and validation["n_val"] == 8
    kept = validation["per_layer"][8] > validation["baseline"]
    assert ([f.layer for f in result.artifact.features] == [8]) == kept


def test_fit_reports_the_prompts_it_harvested_and_validated_on(smollm2, smollm2_sae, fitted):
    model, tokenizer = smollm2
    task = capitals_task()
    assert fitted.harvest.prompts == [s.prompt for s in task.samples("train")[:32]]
    config = corrsteer.CorrSteerConfig(task="capitals", layers=[8], variant="P", samples=8, val_limit=4)
    done = corrsteer.fit(model, tokenizer, corrsteer.CorrSteerData(task, {8: smollm2_sae[0]}), config, progress=False)
    expected = [s.prompt for s in task.samples("train")[:8]] + [s.prompt for s in task.samples("val")[:4]]
    assert done.train_prompts == expected  # what the bench's overlap guard is given


def test_val_data_is_mmlus_own_validation_split_only():
    config = corrsteer.CorrSteerConfig(task="mmlu", data="hf:cais/mmlu:all@auxiliary_train", val_data="v.jsonl")
    assert config.val_data == "v.jsonl"
    with pytest.raises(ValueError, match="val_data applies to task mmlu"):
        corrsteer.CorrSteerConfig(task="harmbench", data="h.csv", val_data="v.jsonl")


def test_official_hook_point_reads_and_steers_the_block_input(smollm2, smollm2_sae, tmp_path):
    """CorrSteer's code hooks the input of block l (forward pre-hook): resid_pre of 8 is resid_post of 7."""
    model, tokenizer = smollm2
    sae = smollm2_sae[0]
    task = capitals_task()
    samples = task.samples("train")[:8]
    read = {
        point: corrsteer.generate_and_read(model, tokenizer, task, samples, {layer: sae}, hook_point=point, pool="max")[
            1
        ]
        for point, layer in (("resid_pre", 8), ("resid_post", 7))
    }
    torch.testing.assert_close(read["resid_pre"], read["resid_post"])
    result = corrsteer.fit_features(
        model, tokenizer, task, {8: sae}, samples=16, batch_size=16, hook_point="resid_pre", progress=False
    )
    assert result.artifact.hook_point == "resid_pre"
    assert {i.hook_point for i in result.artifact.interventions()} == {"resid_pre"}
    store = Store(tmp_path)
    record = store.save("pre", result.artifact)
    assert record.hook_point == "resid_pre" and store.load("pre").hook_point == "resid_pre"


def test_pooled_steps_stop_before_the_step_that_generated_eos_or_pad():
    from saesteer.engines.corrsteer.harvest import pooled_steps

    ids = [[5, 2, 0, 0], [5, 6, 7, 8], [2, 0, 0, 0], [5, 6, 0, 0]]  # eos 2, pad 0
    assert pooled_steps(ids, {2, 0}, 4).tolist() == [
        [True, False, False, False],  # token 1 is EOS: its step is not pooled (CorrSteer's get_eos_positions)
        [True, True, True, True],
        [False, False, False, False],  # EOS first: nothing pooled
        [True, True, False, False],  # pad ends it too
    ]
    assert pooled_steps(ids, {2, 0}, 4, first_only=True).tolist() == [[True, False, False, False]] * 4


def test_harvest_pools_what_corrsteer_pools(smollm2, smollm2_sae):
    from saesteer.engines.corrsteer.harvest import _pool, pooled_steps, stop_ids

    model, tokenizer = smollm2
    sae = smollm2_sae[0]
    task = capitals_task()
    samples = task.samples("train")[:8]
    done, pooled = corrsteer.generate_and_read(
        model, tokenizer, task, samples, {8: sae}, hook_point="resid_post", pool="max"
    )
    valid = pooled_steps(done.ids, stop_ids(model, tokenizer), done.read_valid.shape[1])
    ended = [any(t in stop_ids(model, tokenizer) for t in row) for row in done.ids]
    assert valid.sum(dim=1).tolist() == [int(v) - e for v, e in zip(done.read_valid.sum(dim=1), ended, strict=True)]
    with torch.no_grad():
        expected = _pool(sae.encode(done.reads[8].float()), valid, "max")
    torch.testing.assert_close(pooled[:, 0], expected)

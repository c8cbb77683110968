"""PSR on the real model: prompt loading, triplet batches, MSE/LL training, metrics, alpha search, store."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from saesteer.engines import psr, psr_data
from saesteer.engines.psr_data import Triplet
from saesteer.errors import ConfigError, DataError, LayerError, VectorError
from saesteer.runtime import steer
from saesteer.store import Store
from tests.conftest import chat_batch

TRAIT = "Answer in a very happy, enthusiastic tone."


def test_load_prompts_reads_instruction_prompt_and_plain_strings(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"instruction": "a?"}\n{"prompt": "b?"}\n')
    listed = tmp_path / "p.json"
    listed.write_text(json.dumps(["c?", "d?", "e?"]))
    assert psr_data.load_prompts(jsonl) == ["a?", "b?"]
    assert psr_data.load_prompts(listed, limit=2) == ["c?", "d?"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x"}\n')
    with pytest.raises(DataError, match="Fix:"):
        psr_data.load_prompts(bad)


def test_pair_batches_align_the_span_of_both_runs(smollm2):
    _, tokenizer = smollm2
    ids = tuple(tokenizer("Great question!", add_special_tokens=False)["input_ids"])
    rows = [Triplet("Hi?", "Hi?\n\n" + TRAIT, ids, ""), Triplet("A much longer question here?", "x", ids[:2], "")]
    base = psr_data.pair_batch(tokenizer, rows, steered=False)
    prompted = psr_data.pair_batch(tokenizer, rows, steered=True)
    assert base.span.sum(dim=1).tolist() == prompted.span.sum(dim=1).tolist() == [len(ids) + 1, 3]
    ids_row = base.inputs["input_ids"][0]
    assert ids_row[base.span[0]][1:].tolist() == list(ids)  # last prompt token, then the response
    assert base.labels[0][base.labels[0] != -100].tolist() == list(ids)  # logits at t predict t + 1
    assert base.inputs["position_ids"][1, -1] == base.inputs["attention_mask"][1].sum() - 1


@pytest.fixture(scope="module")
def triplets(smollm2, sentiment_prompts) -> list[Triplet]:
    model, tokenizer = smollm2
    return psr_data.build_triplets(model, tokenizer, sentiment_prompts[:4], TRAIT, max_new_tokens=4, progress=False)


def test_triplets_hold_the_steered_prompt_and_the_models_answer(smollm2, triplets):
    _, tokenizer = smollm2
    assert len(triplets) == 4
    for t in triplets:
        assert t.steered_prompt == f"{t.prompt}\n\n{TRAIT}" and t.label == 1.0 and 1 <= len(t.response_ids) <= 4
        assert tokenizer.decode(t.response_ids, skip_special_tokens=True).strip() == t.response


def test_mse_training_lowers_the_normalised_loss_and_reports_metrics(smollm2, triplets):
    model, tokenizer = smollm2
    config = psr.PSRConfig(layers=[28], epochs=2, lr=1e-3, batch_size=2, reg_weight=0.1)
    result = psr.fit(model, tokenizer, triplets, config, dev=triplets, progress=False)
    losses = [row["dev_loss"] for row in result.history]
    assert losses[0] == pytest.approx(1.0)  # normalised by its initial dev value
    assert losses[-1] < losses[0]  # gradients reach w, b, z through the downstream layers
    metrics = result.artifact.metrics
    assert 0.0 <= metrics["zero_gate_fraction"] <= 1.0 and -1.0 <= metrics["cosine"] <= 1.0
    assert math.isfinite(metrics["r2"]) and math.isfinite(metrics["const_r2"]) and "r2_l28" in metrics
    assert result.artifact.layers == [28] and result.artifact.variant == "S"


def test_ll_training_lowers_the_response_nll_with_two_layers(smollm2, triplets):
    model, tokenizer = smollm2
    config = psr.PSRConfig(layers=[28, 29], objective="ll", epochs=2, lr=1e-3, batch_size=2)
    result = psr.fit(model, tokenizer, triplets, config, dev=triplets, progress=False)
    assert result.artifact.variant == "A"
    assert result.history[-1]["dev_loss"] < result.history[0]["dev_loss"]


def test_bad_configs_fail_with_a_fix(smollm2, triplets):
    model, tokenizer = smollm2
    with pytest.raises(LayerError, match="Fix:"):
        psr.fit(model, tokenizer, triplets, psr.PSRConfig(layers=[40]), progress=False)
    with pytest.raises(ConfigError, match="Fix:"):
        psr.PSRConfig(layers=[3], objective="kl")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Fix:"):
        psr.PSRConfig(layers=[])


def test_alpha_search_finds_the_largest_alpha_meeting_the_target(smollm2, monkeypatch):
    import saesteer.generation

    model, tokenizer = smollm2
    monkeypatch.setattr(saesteer.generation, "generate", lambda m, t, prompts, alpha, **k: [str(alpha)] * len(prompts))
    judge = lambda prompts, texts: [-float(t) for t in texts]  # noqa: E731  coherence falls as alpha grows
    artifact = psr.PSRArtifact({5: (torch.ones(576), torch.tensor(0.0), torch.ones(576))}, alpha=7.0)
    found = psr.calibrate(model, tokenizer, artifact, ["p"], target=-3.0, judge=judge, high=8.0, steps=10)
    assert found.reached and found.artifact.alpha == pytest.approx(3.0, abs=0.01) and found.coherence >= -3.0
    assert found.history[0][0] == 8.0 and found.history[1][0] == 0.0
    easy = psr.calibrate(model, tokenizer, artifact, ["p"], target=-9.0, judge=judge, high=8.0, steps=3)
    assert easy.artifact.alpha == 8.0 and len(easy.history) == 1
    none = psr.calibrate(model, tokenizer, artifact, ["p"], target=1.0, judge=judge, high=8.0, steps=2)
    assert none.artifact.alpha == 0.0 and not none.reached


def test_store_roundtrip_applies_the_same_edit_and_rejects_bad_records(smollm2, tmp_path):
    model, tokenizer = smollm2
    g = torch.Generator().manual_seed(0)
    w, z = torch.randn(576, generator=g) / 24, torch.randn(576, generator=g)
    artifact = psr.PSRArtifact({12: (w, torch.tensor(3.0), z)}, alpha=1.7, model_id="smollm2-135m-instruct")
    store = Store(tmp_path)
    psr.save(store, "happy", artifact)
    loaded = psr.load(store, "happy", model)
    assert loaded.alpha == 1.7 and loaded.layers == [12] and torch.equal(loaded.probes[12][2], z)
    batch = chat_batch(tokenizer, ["How was your weekend?"])
    logits = []
    for item in (artifact, loaded):
        with torch.no_grad(), steer(model, item, alpha=1.0):
            logits.append(model(**batch).logits[:, -1])
    torch.testing.assert_close(logits[0], logits[1])
    with pytest.raises(VectorError, match="hidden size"):
        psr.load(store, "happy", SimpleNamespace(config=SimpleNamespace(hidden_size=64)))
    bad = {"3.w": torch.full((576,), float("nan")), "3.b": torch.zeros(1), "3.z": torch.ones(576)}
    store.put("probe", "nan", bad, method="psr", config={"layers": [3], "alpha": 1.0})
    with pytest.raises(VectorError, match="NaN"):
        psr.load(store, "nan")
    store.put(
        "probe",
        "far",
        {k.replace("3.", "45."): v.nan_to_num() for k, v in bad.items()},
        method="psr",
        config={"layers": [45], "alpha": 1.0},
    )
    with pytest.raises(LayerError, match="Fix:"):
        psr.load(store, "far", model)

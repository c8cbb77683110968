"""PSR on the real model: prompt loading, triplet batches, MSE/LL training, metrics, alpha search, store."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from saesteer.engines import psr
from saesteer.engines.psr import data as psr_data
from saesteer.engines.psr import probes
from saesteer.engines.psr.data import Triplet
from saesteer.engines.training import parse_config
from saesteer.errors import ConfigError, DataError, LayerError, VectorError
from saesteer.models.layers import decoder_layers
from saesteer.runtime import steer
from saesteer.store import Store
from tests.conftest import chat_batch, hook_count

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
    assert torch.equal(base.steer, base.span)  # R: the probes steer exactly the supervised tokens


def test_qr_span_puts_the_trait_in_the_system_turn_and_covers_the_question(smollm2):
    _, tokenizer = smollm2
    question = "Which rivers cross Europe?"
    user, system = psr_data.placed(tokenizer, question, TRAIT, "QR")
    assert (user, system) == (question, TRAIT)  # persona-vector style x': trait as the system turn
    ids = tuple(tokenizer(" Great question!", add_special_tokens=False)["input_ids"])
    rows = [Triplet(question, user, ids, "", steered_system=system)]
    base = psr_data.pair_batch(tokenizer, rows, steered=False, span="QR")
    prompted = psr_data.pair_batch(tokenizer, rows, steered=True, span="QR")
    shared = base.inputs["input_ids"][base.span]
    assert shared.tolist() == prompted.inputs["input_ids"][prompted.span].tolist()  # both runs align
    question_ids = tokenizer(question, add_special_tokens=False)["input_ids"]
    assert int(base.span.sum()) >= len(question_ids) + len(ids) + 1  # question, template tail and response
    assert shared[: len(question_ids) + 8].tolist() != list(ids)  # not just the R span
    assert torch.equal(base.steer, base.inputs["attention_mask"].bool())  # QR steers every token of x y'
    r_batch = psr_data.pair_batch(tokenizer, rows, steered=False)
    assert int(r_batch.span.sum()) == len(ids) + 1 < int(base.span.sum())


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


def test_y_prime_is_sampled_by_default_seeded_and_greedy_on_request(smollm2, sentiment_prompts):
    model, tokenizer = smollm2
    assert psr.PSRConfig(layers=[1]).sample is True

    def answers(**options):
        found = psr_data.build_triplets(
            model, tokenizer, sentiment_prompts[:4], TRAIT, max_new_tokens=8, progress=False, **options
        )
        return [t.response_ids for t in found]

    sampled = answers(seed=3)
    assert sampled == answers(seed=3)  # seeded: reproducible
    greedy = answers(sample=False)
    assert greedy == answers(sample=False, seed=7) and sampled != greedy


def test_the_papers_persona_defaults():
    persona = psr.PSRConfig(layers=[28], trait=TRAIT)
    assert (persona.reg_weight, persona.token_span, persona.lr, persona.weight_decay) == (0.1, "QR", 1e-3, 1e-6)
    assert (persona.n_epochs, persona.alpha, persona.coherence_target) == (15, None, "prompt")
    assert psr.PSRConfig(layers=[28], concept="cats").token_span == "R"  # AxBench concepts use R
    assert psr.PSRConfig(layers=[28], trait=TRAIT, span="R").to_dict()["span"] == "R"


def test_judges_drop_triplets_below_half_and_label_by_attribute():
    rows = [Triplet(f"p{i}", "x", (1,), f"r{i}") for i in range(4)]
    scores = {"r0": (0.9, 0.8), "r1": (0.2, 1.0), "r2": (1.0, 0.4), "r3": (0.5, 0.5)}
    kept, report = psr.filter_triplets(rows, lambda p, r: [scores[x] for x in r], "fake")
    assert [t.response for t in kept] == ["r0", "r3"] and [t.label for t in kept] == [0.8, 0.5]
    assert report.record() == {
        "judge": "fake",
        "generated": 4,
        "dropped_coherence": 1,
        "dropped_attribute": 1,
        "threshold": 0.5,
        "kept": 2,
    }
    with pytest.raises(DataError, match=r"dropped all 4.*Fix:"):
        psr.filter_triplets(rows, lambda p, r: [(0.0, 0.0)] * len(r), "fake")


class _Rater:
    """An AxBench rater stand-in: responses alternate between rated 2/2 and rated 0 on the concept."""

    name = "fake-rater"
    is_proxy = True

    def rate(self, items):
        return [{"concept": 2.0 * (n % 2 == 0), "fluency": 2.0, "instruction": 2.0} for n, _ in enumerate(items)]


def test_mse_training_lowers_the_normalised_loss_and_reports_metrics(smollm2, triplets):
    model, tokenizer = smollm2
    config = psr.PSRConfig(layers=[28], epochs=2, lr=1e-3, batch_size=2, reg_weight=0.1)
    logged = []
    result = psr.train_probes(model, tokenizer, triplets, config, dev=triplets, log=logged.append, progress=False)
    assert logged == result.history[1:]  # one row per epoch
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
    result = psr.train_probes(model, tokenizer, triplets, config, dev=triplets, progress=False)
    assert result.artifact.variant == "A"
    assert result.history[-1]["dev_loss"] < result.history[0]["dev_loss"]


def test_bad_configs_fail_with_a_fix(smollm2, triplets):
    model, tokenizer = smollm2
    with pytest.raises(LayerError, match="Fix:"):
        psr.train_probes(model, tokenizer, triplets, psr.PSRConfig(layers=[40]), progress=False)
    with pytest.raises(ConfigError, match="Fix:"):
        parse_config(psr.METHOD, {"layers": [3], "objective": "kl"})
    with pytest.raises(ConfigError, match="Fix:"):
        parse_config(psr.METHOD, {"layers": []})
    with pytest.raises(ConfigError, match="trait or concept"):
        parse_config(psr.METHOD, {"layers": [3], "trait": "Be happy.", "concept": "cats"})


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
    store.save("happy", artifact)
    loaded = store.load("happy", model)
    assert isinstance(loaded, psr.PSRArtifact)
    assert loaded.alpha == 1.7 and loaded.layers == [12] and torch.equal(loaded.probes[12][2], z)
    batch = chat_batch(tokenizer, ["How was your weekend?"])
    logits = []
    for item in (artifact, loaded):
        with torch.no_grad(), steer(model, item, alpha=1.0):
            logits.append(model(**batch).logits[:, -1])
    torch.testing.assert_close(logits[0], logits[1])
    with pytest.raises(VectorError, match="hidden size"):
        store.load("happy", SimpleNamespace(config=SimpleNamespace(hidden_size=64)))
    bad = {"3.w": torch.full((576,), float("nan")), "3.b": torch.zeros(1), "3.z": torch.ones(576)}
    store.put("probe", "nan", bad, method="psr", config={"layers": [3], "alpha": 1.0})
    with pytest.raises(VectorError, match="NaN"):
        store.load("nan")
    store.put(
        "probe",
        "far",
        {k.replace("3.", "45."): v.nan_to_num() for k, v in bad.items()},
        method="psr",
        config={"layers": [45], "alpha": 1.0},
    )
    with pytest.raises(LayerError, match="Fix:"):
        store.load("far", model)


def _old_hook_forward(model, params, batch, read, logits):
    """Reference: the pre-runtime hand-written PSR hooks (edit at probe layers, record, stop after the last)."""
    out, pre, gate = {}, {}, {}
    wanted = sorted(set(read) | set(params.layers))

    class Stop(Exception):
        pass

    def make(index):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            if index in params.layers:
                w, b, z = params.probe(index)
                gate[index] = torch.relu(hidden @ w + b)
                pre[index] = hidden
                strength = batch.strength.to(hidden.dtype)[:, None, None] * batch.span[..., None]
                hidden = hidden + strength * gate[index][..., None] * z
            out[index] = hidden
            if not logits and index == wanted[-1]:
                raise Stop
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

        return hook

    blocks = decoder_layers(model)
    handles = [blocks[index].register_forward_hook(make(index)) for index in wanted]
    found = None
    try:
        found = model(**batch.inputs, use_cache=False).logits
    except Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return out, pre, gate, found


@pytest.mark.parametrize("logits", [False, True])
def test_probes_through_the_runtime_equal_the_hand_written_hooks(smollm2, logits):
    model, tokenizer = smollm2
    ids = tuple(tokenizer(" Wonderful, what a great day!", add_special_tokens=False)["input_ids"])
    rows = [Triplet("Hi?", "x", ids, "", 1.0), Triplet("How are you doing today?", "x", ids[:3], "", 0.6)]
    batch = psr_data.pair_batch(tokenizer, rows, steered=False)
    results = []
    for run in ("runtime", "hooks"):
        params = probes.ProbeParams([25, 27], 576, torch.Generator().manual_seed(0))
        if run == "runtime":
            hooks = hook_count(model)
            trace, found = probes.run_probes(model, params, batch, [25, 26, 28], logits=logits)
            assert hook_count(model) == hooks
            out, pre, gate = trace.out, trace.pre, trace.gate
        else:
            out, pre, gate, found = _old_hook_forward(model, params, batch, [25, 26, 28], logits)
        assert sorted(out) == [25, 26, 27, 28] and sorted(pre) == sorted(gate) == [25, 27]
        loss = sum(out[layer][batch.span].pow(2).sum() for layer in out) + sum(g.sum() for g in gate.values())
        if logits:
            loss = loss + found.logsumexp(-1).sum()
        else:
            assert found is None  # the forward stopped after layer 28
        loss.backward()
        results.append([loss.detach(), *(pre[25], gate[27]), params.w.grad, params.b.grad, params.z.grad])
    assert float(results[0][-1].abs().max()) > 0
    for new, old in zip(*results, strict=True):
        assert torch.equal(new.detach(), old.detach())  # same arithmetic: recorded PSR numbers reproduce


def test_fit_trains_then_sets_alpha_by_calibration_or_config(smollm2, triplets):
    model, tokenizer = smollm2
    config = psr.PSRConfig(layers=[28], epochs=1, batch_size=2, max_new_tokens=3, trait=TRAIT, span="R")
    judge = lambda prompts, texts: [0.0] * len(texts)  # noqa: E731  every alpha is coherent enough
    data = psr.PSRData([t.prompt for t in triplets], TRAIT, triplets=triplets, judge=judge)
    logged = []
    fitted = psr.fit(model, tokenizer, data, config, log=logged.append, progress=False)
    calibration = fitted.report["calibration"]
    assert calibration.reached and fitted.artifact.alpha == 8.0 and calibration.history == [(8.0, 0.0)]
    assert fitted.artifact.config["instruction"] == TRAIT and fitted.report["result"].artifact is fitted.artifact
    assert logged[-1]["alpha"] == 8.0 and "train_loss" in logged[0] and fitted.data_hash
    assert fitted.artifact.config["triplet_filter"] == {"judge": None, "generated": 4, "kept": 4}
    assert fitted.artifact.positions == "prompt_and_generated_last" and fitted.artifact.config["span"] == "R"
    fixed = psr.fit(model, tokenizer, data, config.model_copy(update={"alpha": 0.5}), progress=False)
    assert fixed.artifact.alpha == 0.5 and fixed.report["calibration"] is None
    torch.testing.assert_close(fixed.artifact.probes[28][2], fitted.artifact.probes[28][2])  # same seed, same probes


def test_fit_filters_triplets_with_the_configured_judge(smollm2, triplets, monkeypatch):
    model, tokenizer = smollm2
    asked = []
    monkeypatch.setattr(psr, "make_rater", lambda spec, m, t: asked.append(spec) or _Rater())
    config = psr.PSRConfig(layers=[28], epochs=1, batch_size=2, trait=TRAIT, span="R", alpha=1.0, judge="proxy")
    data = psr.PSRData([t.prompt for t in triplets], TRAIT, triplets=triplets)
    fitted = psr.fit(model, tokenizer, data, config, progress=False)
    record = fitted.artifact.config["triplet_filter"]
    assert asked == ["proxy"] and record["judge"] == "fake-rater" and record["generated"] == 4
    assert record["dropped_attribute"] == 2 and record["kept"] == 2  # the paper drops J_attr < 0.5
    result = fitted.report["result"]
    assert len(result.train) + len(result.dev) == 2
    off = psr.fit(model, tokenizer, data, config.model_copy(update={"filter_triplets": False}), progress=False)
    assert off.artifact.config["triplet_filter"]["judge"] is None and off.artifact.config["triplet_filter"]["kept"] == 4


def test_qr_training_steers_everything_and_is_stored_with_all_positions(smollm2, sentiment_prompts):
    model, tokenizer = smollm2
    rows = psr_data.build_triplets(
        model, tokenizer, sentiment_prompts[:3], TRAIT, max_new_tokens=3, span="QR", progress=False
    )
    assert all(t.steered_system == TRAIT and t.steered_prompt == t.prompt for t in rows)
    config = psr.PSRConfig(layers=[28], epochs=1, batch_size=2, trait=TRAIT)
    result = psr.train_probes(model, tokenizer, rows, config, dev=rows[:1], progress=False)
    assert result.artifact.positions == "all" and result.artifact.config["span"] == "QR"
    assert result.artifact.config["reg_weight"] == 0.1

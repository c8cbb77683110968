"""PrOSV on the real SmolLM2: scaling rule, positions (prompt-only, prefill-only), losses, training, store."""

from __future__ import annotations

import json
import math

import pytest
import torch

from saesteer.data import read_rows, sample_path
from saesteer.engines import prosv
from saesteer.engines.prosv import ProsvArtifact, ProsvConfig
from saesteer.engines.prosv.data import Triple, build_triples, fill_neutral, load_triples
from saesteer.engines.prosv.training import (
    ProsvParameters,
    encode_batch,
    lang_loss,
    scaled_simpo_loss,
    sequence_logps,
    training_mask,
)
from saesteer.engines.protocol import DataContext
from saesteer.engines.training import parse_config
from saesteer.errors import ConfigError, DataError, LayerError, VectorError
from saesteer.generation import generate
from saesteer.models.layers import decoder_layers
from saesteer.runtime.positions import PromptInfo, PromptPrefixSuffix, parse_positions
from saesteer.runtime.steer import steer
from saesteer.store import Store
from tests.conftest import chat_batch, hook_count

AXBENCH = sample_path("axbench/train.jsonl")
CPP = "C/C++ programming syntax elements such as data types, function definitions, and variable declarations"


def _triples(n: int = 2) -> list[Triple]:
    return load_triples(AXBENCH, concept_id=2, limit=n)


@pytest.mark.parametrize("width", [576, 2304])
@pytest.mark.parametrize("loss", ["lang", "simpo"])
def test_parameter_groups_follow_the_width_scaling_rule(width, loss):
    hyper = ProsvConfig(layer=0, loss=loss, preset="width_rule").hyper(width, n_layers=30)
    params = ProsvParameters(width, hyper, torch.Generator().manual_seed(0))
    optimizer, _ = prosv.make_optimizer(params, hyper, total_steps=10)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["vector"]["params"] == [params.vector] and groups["factor"]["params"] == [params.factor]
    ratio = width / 2304
    assert groups["vector"]["lr"] == pytest.approx(4e-2 / math.sqrt(ratio))  # eta_v = Theta(n^-1/2)
    released = {"lang": 10.0, "simpo": 20.0}[loss]
    assert groups["factor"]["lr"] == pytest.approx(released * math.sqrt(ratio))  # eta_alpha = Theta(n^1/2)
    assert groups["vector"]["lr"] * groups["factor"]["lr"] == pytest.approx(4e-2 * released)  # product Theta(1)
    assert float(params.factor.detach()) == pytest.approx(4.0 * math.sqrt(width))  # alpha0 = beta sqrt(n)
    bound, vector = 8.0 / math.sqrt(width), params.vector.detach()  # v0 ~ U(-lambda/sqrt(n), lambda/sqrt(n))
    assert float(vector.abs().max()) <= bound and float(vector.abs().max()) > 0.95 * bound
    assert float(vector.std()) == pytest.approx(bound / math.sqrt(3), rel=0.1)
    rms = float((params.factor * params.vector).detach().pow(2).mean().sqrt())  # alpha0 * v0: Theta(1) per coord
    assert rms == pytest.approx(4.0 * 8.0 / math.sqrt(3), rel=0.1)
    assert hyper.source.startswith(f"width rule from 2b_l10_{loss}_prosv.sh")


@pytest.mark.parametrize(
    ("shape", "loss", "positions", "expected", "source"),
    [
        ((3584, 42), "simpo", "f2+l2", (2.0, 10.0, 8.0, 8e-2, 12, 6), "9b_l20_simpo_prosv.sh"),
        ((3584, 42), "lang", "f2+l2", (2.0, 0.1, 8.0, 4e-2, 12, 12), "9b_l20_lang_prosv.sh"),
        ((5120, 64), "simpo", "f2+l2", (1.0, 10.0, 8.0, 8e-2, 6, 6), "q25_32b_l32_simpo_prosv.sh"),
        ((2304, 26), "simpo", "all", (2.0, 0.1, 1.0, 4e-2, 12, 6), "2b_l10_simpo_all.sh"),
        ((3840, 48), "lang", "f2+l2", (1.0, 1.0, 8.0, 8e-2, 24, 6), "g3_12b_l22_lang_prosv.sh"),
    ],
)
def test_a_model_of_a_released_shape_gets_the_released_config(shape, loss, positions, expected, source):
    config = ProsvConfig(layer=20, loss=loss, positions=positions)
    hyper = config.hyper(*shape)  # config only: no 9B/32B model is loaded
    values = (hyper.factor_init, hyper.factor_lr, hyper.vector_init, hyper.vector_lr, hyper.epochs, hyper.batch_size)
    assert values == pytest.approx(expected)
    assert hyper.source.startswith(f"released {source}") and f"{shape[0]}x{shape[1]}" in hyper.source
    # the width rule would have moved eta_v down as the width grows; the release does not
    rule = ProsvConfig(layer=20, loss=loss, positions=positions, preset="width_rule").hyper(*shape)
    assert rule.vector_lr == pytest.approx(4e-2 * math.sqrt(2304 / shape[0])) and rule.source.startswith("width")


def test_released_layer_picks_the_run_and_set_fields_override():
    assert ProsvConfig(layer=20, positions="all").hyper(2304, 26).factor_init == 1.0  # 2b_l20_lang_all.sh
    assert ProsvConfig(layer=12, positions="all").hyper(2304, 26).factor_init == 2.0  # 2b_l10_lang_all.sh
    hyper = ProsvConfig(layer=20, loss="simpo", vector_lr=1e-3, epochs=2).hyper(3584, 42)
    assert (hyper.vector_lr, hyper.epochs, hyper.factor_lr) == (1e-3, 2, 10.0)
    assert hyper.source.endswith("set here: vector_lr, epochs")
    other = ProsvConfig(layer=3).hyper(576, 30)  # no release of that shape: the labelled fallback
    assert other.source.startswith("width rule") and other.vector_lr == pytest.approx(8e-2)


def test_learning_rate_decays_linearly_to_zero_without_warmup():
    hyper = ProsvConfig(layer=0).hyper(576, 30)
    params = ProsvParameters(576, hyper, torch.Generator().manual_seed(0))
    optimizer, scheduler = prosv.make_optimizer(params, hyper, total_steps=4)
    seen = []
    for _ in range(4):
        seen.append(optimizer.param_groups[1]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([5.0, 3.75, 2.5, 1.25]) and optimizer.param_groups[1]["lr"] == 0.0


@pytest.mark.parametrize(
    ("spec", "stored", "prefix", "suffix"),
    [
        ("f2+l2", "f2+l2", 2, 2),
        ("F2 + L2", "f2+l2", 2, 2),
        ("f4", "f4+l0", 4, 0),
        ("f4+l0", "f4+l0", 4, 0),
        ("l3", "f0+l3", 0, 3),
        ("prompt_prefix_suffix(1, 5)", "f1+l5", 1, 5),
        ("all", "all", None, None),
        ("fssv", "all", None, None),
    ],
)
def test_position_specs_are_the_runtimes_grammar_stored_as_before(spec, stored, prefix, suffix):
    config = ProsvConfig(layer=0, positions=spec)
    assert config.positions == stored  # the strings older records hold, so they still load
    policy = parse_positions(stored)
    if prefix is None:
        assert policy.name == "all" and parse_positions(spec) == policy
    else:
        assert policy == parse_positions(spec) == PromptPrefixSuffix(prefix, suffix)


@pytest.mark.parametrize("spec", ["f0+l0", "f0", "f-1+l2", "f2+f3", "first2", "", "f2+l2+x", "after_prompt"])
def test_bad_position_specs_are_config_errors(spec):
    with pytest.raises(ConfigError, match=r"positions.*Fix:"):
        parse_config(prosv.METHOD, {"layer": 0, "positions": spec})


@pytest.mark.parametrize(
    "bad",
    [
        {"loss": "dpo"},
        {"epochs": 0},
        {"batch_size": 0},
        {"factor_lr": 0.0},
        {"vector_init": -1.0},
        {"max_response_tokens": 0},
        {"concpet": "typo"},
    ],
)
def test_bad_configs_are_config_errors(bad):
    with pytest.raises(ConfigError, match="Fix:"):
        parse_config(prosv.METHOD, {"layer": 0, **bad})


@pytest.mark.parametrize(("length", "expected"), [(1, [0]), (3, [0, 1, 2]), (4, [0, 1, 2, 3]), (7, [0, 1, 5, 6])])
def test_prefix_suffix_capping_follows_the_paper(length, expected):
    valid = torch.zeros(1, 8, dtype=torch.bool)
    valid[0, 8 - length :] = True  # left padded
    mask = PromptPrefixSuffix(2, 2).prompt_mask(PromptInfo(None, valid, ()))
    assert (mask[0].nonzero().flatten() - (8 - length)).tolist() == expected


def test_training_touches_only_the_chosen_prompt_positions(smollm2):
    _, tokenizer = smollm2
    batch = encode_batch(
        tokenizer, ["Hi", "Explain tax law in one line."], ["Hello there.", "No."], max_response_tokens=8
    )
    prompt_lengths = batch.prompt.sum(dim=1).tolist()
    mask = training_mask(parse_positions("f2+l2"), batch)
    for row, length in enumerate(prompt_lengths):
        assert mask[row].nonzero().flatten().tolist() == [0, 1, length - 2, length - 1]
    assert not bool((mask & batch.response).any())
    labelled = batch.labels != -100
    assert torch.equal(labelled, batch.response)  # the loss sees response tokens only
    for row, text in enumerate(["Hello there.", "No."]):  # the response text alone: no EOS appended (release)
        assert batch.labels[row][labelled[row]].tolist() == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.eos_token_id not in batch.labels[labelled].tolist()
    full = training_mask(parse_positions("all"), batch)
    assert torch.equal(full, batch.prompt | batch.response)


def test_losses_match_their_definitions():
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[-100, -100, 3, 4, -100], [-100, 1, 2, 6, 0]])
    picked = torch.log_softmax(logits[:, :-1], -1).gather(-1, labels[:, 1:].clamp(min=0)[..., None])[..., 0]
    keep = labels[:, 1:] != -100
    assert float(lang_loss(logits, labels)) == pytest.approx(float(-picked[keep].mean()), rel=1e-5)
    sums, lengths = sequence_logps(logits, labels)
    assert lengths.tolist() == [2, 4] and torch.allclose(sums, (picked * keep).sum(dim=1))
    win, lose = torch.tensor([-4.0, -9.0]), torch.tensor([-6.0, -3.0])
    ref_win, ref_lose = torch.tensor([-10.0, -2.0]), torch.tensor([-4.0, -3.0])
    lw, ll = torch.tensor([2, 3]), torch.tensor([3, 1])
    weight = torch.tensor([6.0, 1.0])  # max(ref_lose - ref_win, 1)
    expected = -torch.nn.functional.logsigmoid(weight / lw * win - lose / ll).mean()
    assert float(scaled_simpo_loss(win, lose, ref_win, ref_lose, lw, ll)) == pytest.approx(float(expected))


def _artifact(width: int = 576, positions: str = "f2+l2", seed: int = 0) -> ProsvArtifact:
    direction = torch.randn(width, generator=torch.Generator().manual_seed(seed)) / math.sqrt(width)
    return ProsvArtifact(direction=direction, factor=40.0, layer=10, positions=positions, model_id="smollm2")


def _edits(model, tokenizer, artifact, prompts, new_tokens=3):
    """Per forward call, block-10 output after steering minus before (both seen in the same pass)."""
    before, after = [], []
    block = decoder_layers(model)[10]
    first = block.register_forward_hook(lambda m, a, o: before.append(o[0] if isinstance(o, tuple) else o))
    batch = chat_batch(tokenizer, prompts)
    try:
        with steer(model, artifact):
            last = block.register_forward_hook(lambda m, a, o: after.append(o[0] if isinstance(o, tuple) else o))
            try:
                model.generate(**batch, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            finally:
                last.remove()
    finally:
        first.remove()
    return batch, [a - b for a, b in zip(after, before, strict=True)]


def test_generation_edits_only_first_and_last_prompt_tokens_at_prefill(smollm2):
    model, tokenizer = smollm2
    artifact = _artifact()
    hooks = hook_count(model)
    batch, edits = _edits(model, tokenizer, artifact, ["Hi!", "Name three rivers of Europe, please."])
    assert hook_count(model) == hooks and len(edits) == 3
    valid = batch["attention_mask"].bool()
    for row in range(2):
        index = valid[row].nonzero().flatten()
        touched = edits[0][row].abs().amax(dim=-1) > 0
        expected = torch.zeros_like(touched)
        expected[index[[0, 1, -2, -1]]] = True
        assert torch.equal(touched, expected)
        assert torch.allclose(edits[0][row, index[0]], artifact.vector, atol=1e-4)
    assert all(float(e.abs().max()) == 0.0 for e in edits[1:])  # decode steps untouched
    _, fssv = _edits(model, tokenizer, _artifact(positions="all"), ["Hi!"], new_tokens=2)
    assert all(torch.allclose(e[0, -1], artifact.vector, atol=1e-4) for e in fssv)  # FSSV: every step


def test_alpha_multiplies_the_trained_factor():
    artifact = _artifact()
    (item,) = artifact.interventions(alpha=[1.0, 0.5, 0.0])
    assert item.operator.alpha.tolist() == [40.0, 20.0, 0.0]
    (same,) = artifact.interventions()
    assert float(same.operator.alpha) == 40.0 and str(same.positions.name) == "prompt_prefix_suffix"


def _old_hook_step(model, tokenizer, params, chunk, config):
    """Reference: the loss of one lang step with the pre-runtime hand-written hook (output + mask * alpha * v)."""
    batch = encode_batch(
        tokenizer, [t.instruction for t in chunk], [t.concept_response for t in chunk], max_response_tokens=8
    )
    mask = training_mask(parse_positions(config.positions), batch)

    def hook(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        edited = hidden + mask[..., None].to(hidden.dtype) * (params.factor * params.vector).to(hidden.dtype)
        return (edited, *output[1:]) if isinstance(output, tuple) else edited

    handle = decoder_layers(model)[config.layer].register_forward_hook(hook)
    try:
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    finally:
        handle.remove()
    return lang_loss(logits, batch.labels)


@pytest.mark.parametrize("positions", ["f2+l2", "all"])
def test_a_step_through_the_runtime_equals_the_hand_written_hook(smollm2, positions):
    from saesteer.engines.prosv.training import _step_loss
    from saesteer.runtime.trainable import TrainableAdd

    model, tokenizer = smollm2
    config = ProsvConfig(layer=10, max_response_tokens=8, positions=positions)
    chunk = _triples(3)
    grads = []
    for run in ("runtime", "hook"):
        params = ProsvParameters(576, config.hyper(576, 30), torch.Generator().manual_seed(0))
        with torch.enable_grad():
            if run == "runtime":
                add = TrainableAdd(params.vector, params.factor)
                loss = _step_loss(model, tokenizer, chunk, config, parse_positions(positions), add)
            else:
                loss = _old_hook_step(model, tokenizer, params, chunk, config)
            loss.backward()
        grads.append((loss.detach(), params.factor.grad, params.vector.grad))
    assert float(grads[0][2].abs().max()) > 0  # gradients reach v through the runtime's hook
    for new, old in zip(grads[0], grads[1], strict=True):
        assert torch.equal(new, old)  # same arithmetic: recorded PrOSV numbers reproduce


def test_fit_lang_saves_loads_and_steers_through_the_runtime(smollm2, tmp_path):
    model, tokenizer = smollm2
    config = ProsvConfig(layer=10, epochs=2, batch_size=2, max_response_tokens=8, seed=1, concept=CPP)
    hooks = hook_count(model)
    logged = []
    fitted = prosv.fit(model, tokenizer, _triples(2), config, log=logged.append, progress=False)
    artifact = fitted.artifact
    assert hook_count(model) == hooks and not any(p.requires_grad for p in model.parameters())
    init = ProsvParameters(576, config.hyper(576, 30), torch.Generator().manual_seed(1))
    assert artifact.factor != pytest.approx(float(init.factor.detach())) and not torch.allclose(
        artifact.direction, init.vector
    )
    assert artifact.metrics["loss_last_epoch"] < artifact.metrics["loss_first_step"]
    assert artifact.config["vector_lr"] == pytest.approx(8e-2) and artifact.config["factor_lr"] == pytest.approx(5.0)
    assert artifact.config["epochs"] == 2 and artifact.config["hyper_source"].startswith("width rule from 2b_l10")
    assert len(logged) == 2 and set(logged[0]) == {"loss", "factor", "v_norm"}  # one row per step
    assert logged[0]["loss"] == artifact.metrics["loss_first_step"] and logged[-1]["factor"] == artifact.factor
    assert fitted.report == artifact.metrics and fitted.data_hash

    store = Store(tmp_path / "store")
    store.save("cpp", artifact)
    loaded = store.load("cpp", model)
    assert isinstance(loaded, ProsvArtifact)
    assert loaded.factor == artifact.factor and torch.equal(loaded.direction, artifact.direction)
    assert loaded.positions == "f2+l2" and loaded.concept == CPP and loaded.layer == 10
    assert torch.equal(loaded.vector, artifact.vector) and loaded.config["vector_lr"] == artifact.config["vector_lr"]

    prompts = ["Tell me about your weekend.", "Tell me about your weekend."]
    plain = generate(model, tokenizer, prompts[:1], max_new_tokens=8)[0]
    steered = generate(model, tokenizer, prompts, steering=loaded, alpha=[1.0, 0.0], max_new_tokens=8)
    assert steered[0] != plain and steered[1] == plain  # per-row multipliers through the core runtime


def test_fit_simpo_with_model_written_neutral_responses(smollm2):
    model, tokenizer = smollm2
    triples = fill_neutral(model, tokenizer, _triples(2), max_new_tokens=6)
    assert all(t.neutral_response for t in triples)
    config = ProsvConfig(layer=10, loss="simpo", epochs=1, max_response_tokens=10)
    artifact = prosv.train_vector(model, tokenizer, triples, config, progress=False)
    assert artifact.config["batch_size"] == 6 and artifact.config["factor_lr"] == pytest.approx(10.0)
    assert math.isfinite(artifact.metrics["loss_first_step"]) and artifact.factor != pytest.approx(96.0)


def test_fit_errors(smollm2):
    model, tokenizer = smollm2
    with pytest.raises(LayerError, match="Fix:"):
        prosv.train_vector(model, tokenizer, _triples(1), ProsvConfig(layer=30), progress=False)
    with pytest.raises(DataError, match="fill_neutral"):
        prosv.train_vector(model, tokenizer, _triples(1), ProsvConfig(layer=10, loss="simpo"), progress=False)
    with pytest.raises(DataError, match="Fix:"):
        prosv.fit(model, tokenizer, [], ProsvConfig(layer=10), progress=False)


def test_load_checks_width_and_layer(smollm2, tmp_path):
    model, _ = smollm2
    store = Store(tmp_path / "store")
    store.save("narrow", _artifact(width=8))
    with pytest.raises(VectorError, match=r"width 8 .* 576\. Fix:"):
        store.load("narrow", model)
    deep = _artifact()
    deep.layer = 40
    store.save("deep", deep)
    with pytest.raises(LayerError, match="Fix:"):
        store.load("deep", model)
    assert store.load("deep").layer == 40  # without a model nothing is checked


def test_data_files(tmp_path):
    by_name = load_triples(AXBENCH, concept=CPP)  # description looked up in concepts.jsonl beside the file
    assert len(by_name) == 36 and by_name == load_triples(AXBENCH, concept_id=2)
    rows = [r for r in read_rows(AXBENCH) if r["concept_id"] == 2]
    assert by_name[0] == Triple(rows[0]["input"], rows[0]["output"], None)
    with pytest.raises(DataError, match="not in"):
        load_triples(AXBENCH, concept="underwater basket weaving")
    own = tmp_path / "own.jsonl"
    own.write_text(json.dumps({"instruction": "i", "concept_response": "c", "neutral_response": "n"}) + "\n")
    assert load_triples(own) == [Triple("i", "c", "n")]
    own.write_text(json.dumps({"instruction": "i", "neutral_response": "n"}) + "\n")
    with pytest.raises(DataError, match="concept_response"):
        load_triples(own)


def test_build_triples_with_the_bundled_model(smollm2):
    model, tokenizer = smollm2
    triples = build_triples(model, tokenizer, "the ocean", ["Describe a chair."], max_new_tokens=6)
    assert len(triples) == 1 and triples[0].concept_response and triples[0].neutral_response
    with pytest.raises(DataError, match="Fix:"):
        build_triples(model, tokenizer, " ", ["x"])


def test_simpo_loser_is_the_contrast_datas_neutral_response(smollm2, tmp_path):
    model, tokenizer = smollm2
    contrast = tmp_path / "contrast_train_data.jsonl"
    row = {
        "negative_input": "Describe a chair.",
        "negative_output": "A chair has four legs and a seat.",
        "positive_input": "Please incorporate the following concept ...",
        "positive_output": "int legs = 4; a chair in C++.",
        "concept_id": 2,
        "category": "positive",
    }
    contrast.write_text(json.dumps(row) + "\n" + json.dumps({**row, "concept_id": 3}) + "\n")
    triples = load_triples(contrast, concept_id=2)  # the release's simpo data: instruction = negative_input
    assert triples == [
        Triple("Describe a chair.", "int legs = 4; a chair in C++.", "A chair has four legs and a seat.")
    ]
    context = DataContext(model, tokenizer)
    loaded = prosv.load_data(ProsvConfig(layer=10, loss="simpo", data=str(contrast), concept_id=2), context)
    assert loaded == triples  # used as given, never replaced by the model's own answer
    axbench = ProsvConfig(layer=10, loss="simpo", data=str(AXBENCH), concept_id=2, max_examples=1)
    with pytest.raises(DataError, match=r"no neutral response.*Fix:.*--neutral model"):
        prosv.load_data(axbench, context)  # AxBench train rows have none: no silent greedy loser
    own = ProsvConfig(**{**axbench.model_dump(), "neutral": "model", "max_response_tokens": 4})
    filled = prosv.load_data(own, context)  # the labelled departure: the model answers where data has none
    assert filled[0].neutral_response and filled[0].concept_response == _triples(1)[0].concept_response

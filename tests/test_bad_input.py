"""The bad-input matrix: one row per kind of bad input, each a typed error whose message names the fix,
and the model left unhooked."""

from __future__ import annotations

import os

import pytest
import torch

from saesteer.errors import (
    ConfigError,
    DataError,
    LayerError,
    ModelNotFoundError,
    SAEError,
    SaesteerError,
    StoreError,
    VectorError,
)
from saesteer.models import load_model
from saesteer.tasks import get_task
from tests.conftest import hook_count


def _steer(model, vector, **kwargs):
    from saesteer.runtime import steer

    with steer(model, vector, **kwargs):
        pass


def _sae_width(model, tmp_path):
    from sae_lens import TopKSAE, TopKSAEConfig

    from saesteer.saes import check_sae_fits

    check_sae_fits(model, TopKSAE(TopKSAEConfig(d_in=512, d_sae=64, k=4)))


def _stats_nan(model, tmp_path):
    from saesteer.stats import FeatureStats

    FeatureStats.empty([1], 3).update(torch.tensor([[float("nan"), 0.0, 1.0]]), torch.tensor([1.0]))


def _stats_mismatch(model, tmp_path):
    from saesteer.stats import FeatureStats

    FeatureStats.empty([1], 3).merge(FeatureStats.empty([1], 4))


def _dataset(text):
    def run(model, tmp_path):
        from saesteer.data import load_contrast_data

        path = tmp_path / "d.jsonl"
        path.write_text(text)
        load_contrast_data(path)

    return run


def _recipe(text):
    def run(model, tmp_path):
        from saesteer.recipes import load_recipe

        path = tmp_path / "r.yaml"
        path.write_text(text)
        load_recipe(path)

    return run


def _store_is_file(model, tmp_path):
    from saesteer.store import Store

    (tmp_path / "f").write_text("x")
    Store(tmp_path / "f")


def _read_only_store(model, tmp_path, monkeypatch):
    from saesteer.store import Store

    store = Store(tmp_path / "s")
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root can write anywhere; simulate a read-only dir
    store.put("vector", "v", {"vector": torch.ones(3)})


def _long_prompt_generate(model, tmp_path):
    from saesteer.generation import generate

    generate(model, _long_prompt_generate.tokenizer, ["word " * 9000], max_new_tokens=4)


def _long_prompt_steered(model, tmp_path):
    ids = torch.ones(1, 8200, dtype=torch.long)
    from saesteer.runtime import steer

    with steer(model, torch.ones(576), layer=3), torch.no_grad():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))


CASES = {
    "layer out of range": (lambda m, p: _steer(m, torch.ones(576), layer=99), LayerError, "30 decoder layers"),
    "SAE width != hidden size": (_sae_width, SAEError, "hidden size 576"),
    "vector width != hidden size": (lambda m, p: _steer(m, torch.ones(100), layer=3), VectorError, "hidden size"),
    "NaN in a vector": (lambda m, p: _steer(m, torch.full((576,), float("nan")), layer=3), VectorError, "NaN"),
    "inf alpha": (lambda m, p: _steer(m, torch.ones(576), layer=3, alpha=float("inf")), VectorError, "NaN/inf"),
    "NaN in a statistic": (_stats_nan, DataError, "NaN"),
    "statistics of another width": (_stats_mismatch, ConfigError, "Fix"),
    "empty dataset": (_dataset(""), DataError, "empty"),
    "row missing a field": (_dataset('{"positive": "a"}\n'), DataError, "'negative'"),
    "row of the wrong type": (_dataset('{"positive": "a", "negative": 5}\n'), DataError, "string"),
    "unknown model": (lambda m, p: load_model("gpt-17"), ModelNotFoundError, "smollm2"),
    "unknown task": (
        lambda m, p: get_task("astrology"),
        ConfigError,
        "Unknown task",
    ),
    "unknown position policy": (lambda m, p: _steer(m, torch.ones(576), layer=3, positions="x"), ConfigError, "policy"),
    "recipe with an unknown field": (
        _recipe("job: sae_train\nmodel: m\nlayer: 1\nstore: s\nfoo: 1\n"),
        ConfigError,
        "foo",
    ),
    "recipe with an ill-typed field": (
        _recipe("job: sae_train\nmodel: m\nlayer: one\nstore: s\n"),
        ConfigError,
        "layer",
    ),
    "recipe train step with a config typo": (
        _recipe(
            "job: bench\nmodel: m\ntasks: [{kind: mmlu}]\nmethods: [{kind: unsteered}]\n"
            "train: [{method: caa, name: v, config: {layer: 1, raed: mean}}]\n"
        ),
        ConfigError,
        "raed",
    ),
    "store path is a file": (_store_is_file, StoreError, "is a file"),
    "prompt longer than the context (generate)": (_long_prompt_generate, DataError, "context of 8192"),
    "prompt longer than the context (steered forward)": (_long_prompt_steered, DataError, "context of 8192"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_matrix(case, smollm2, tmp_path):
    model, tokenizer = smollm2
    _long_prompt_generate.tokenizer = tokenizer
    action, error, message = CASES[case]
    hooks = hook_count(model)
    with pytest.raises(error, match=message) as info:
        action(model, tmp_path)
    assert isinstance(info.value, SaesteerError) and "Fix" in str(info.value)
    assert hook_count(model) == hooks


def test_read_only_store(tmp_path, monkeypatch):
    with pytest.raises(StoreError, match="read-only"):
        _read_only_store(None, tmp_path, monkeypatch)
    assert not list((tmp_path / "s" / "blobs").iterdir())


def test_unknown_method_on_the_cli(capsys):
    from saesteer.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "magic"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err

"""The sae_edit method: config -> artifact -> store round trip (SAE kept inside), conditions, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from saesteer.engines.sae_edit import SAEEditArtifact, build_edits
from saesteer.engines.training import train
from saesteer.errors import ConfigError, SAEError, StoreError
from saesteer.runtime import steer
from saesteer.store import Store
from tests.conftest import chat_batch

PROMPTS = ["How was your weekend?", "Write a Python function that sorts a list."]


@pytest.fixture
def store(tmp_path: Path, smollm2_sae: Any) -> Store:
    store = Store(tmp_path / "store")
    store.save_sae("sae-l8", smollm2_sae[0], model_id="smollm2-135m-instruct", layer=8)
    store.save_sae("foreign", smollm2_sae[0], model_id="gpt2", layer=8)
    return store


def test_stored_edit_rebuilds_without_the_sae_record_and_steers_the_same(smollm2: Any, store: Store) -> None:
    model, tokenizer = smollm2
    config = {"sae": "sae-l8", "edits": ["3=10", "40+=5", "7*=2", "9=0"], "when": "latent:8:3>0.0"}
    fitted, record = train("sae_edit", model, tokenizer, config, store=store, name="clamp", progress=False)
    assert record is not None and fitted.report["n_edits"] == 4
    store.delete("sae-l8")
    loaded = store.load("clamp", model)
    assert isinstance(loaded, SAEEditArtifact) and loaded.layers == [8] and loaded.condition is not None
    assert [e.op for e in loaded.edits[8]] == ["set", "add", "scale", "ablate"]
    batch = chat_batch(tokenizer, PROMPTS)
    with torch.no_grad():
        plain = model(**batch).logits
        with steer(model, fitted.artifact, alpha=2.0):
            fresh = model(**batch).logits
        with steer(model, loaded, alpha=2.0):
            again = model(**batch).logits
    assert torch.equal(fresh, again) and not torch.equal(fresh, plain)
    assert loaded.additive_vector() is None


def test_bad_sae_edit_input_is_a_typed_error_with_a_fix(smollm2: Any, store: Store) -> None:
    model, _ = smollm2
    cases: list[tuple[type[Exception], str, dict[str, Any]]] = [
        (SAEError, "latent index 5000", {"specs": ["5000=1"], "sae": "sae-l8"}),
        (ConfigError, "nan", {"specs": ["3=nan"], "sae": "sae-l8"}),
        (ConfigError, "Cannot read the latent edit", {"specs": ["3~1"], "sae": "sae-l8"}),
        (SAEError, "trained on 'gpt2'", {"specs": ["3=1"], "sae": "foreign"}),
        (ConfigError, "Cannot read the condition", {"specs": ["3=1"], "sae": "sae-l8", "when_spec": "latent:8:3"}),
        (ConfigError, "A latent edit needs its SAE", {"specs": ["3=1"]}),
    ]
    for error, message, kwargs in cases:
        specs = kwargs.pop("specs")
        with pytest.raises(error, match=rf"{message}.*Fix:"):
            build_edits(model, store, specs, **kwargs)
    with pytest.raises(StoreError, match=r"No SAE for model.*Fix:"):
        build_edits(model, store, ["5:3=1"])

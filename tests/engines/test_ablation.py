"""The ablation method: a unit diff-mean direction that the prompt moves along, removed by the artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from saesteer.engines.ablation import AblationConfig, DirectionAblation, fit, prompted_activations
from saesteer.errors import ConfigError
from saesteer.runtime import steer
from saesteer.store import Store
from tests.conftest import hook_count

INSTRUCTION = "Reply only in French. Réponds uniquement en français."
PROMPTS = ["What is a balance sheet?", "How can I improve my table tennis skills?", "When did money originate?"]
LAYER = 10


@pytest.fixture(scope="module")
def fitted(smollm2: Any) -> DirectionAblation:
    model, tokenizer = smollm2
    config = AblationConfig(instruction=INSTRUCTION, layer=LAYER)
    return fit(model, tokenizer, PROMPTS, config, progress=False).artifact


def test_fit_gives_a_unit_direction_the_prompt_moves_along(fitted: DirectionAblation, smollm2: Any) -> None:
    assert fitted.width == smollm2[0].config.hidden_size
    assert abs(float(fitted.direction.norm()) - 1.0) < 1e-5
    assert fitted.layers == list(range(30)) and fitted.mode == "all-layers"
    metrics = fitted.metrics
    assert metrics["pair_separation"] == 1.0 and metrics["n_prompts"] == len(PROMPTS)
    assert metrics["projection_prompted"] - metrics["projection_unprompted"] == pytest.approx(metrics["diff_norm"])
    assert fitted.additive_vector() is None


def test_ablation_removes_the_projection_of_prompted_activations(fitted: DirectionAblation, smollm2: Any) -> None:
    model, tokenizer = smollm2
    r = fitted.direction.double()

    def projection() -> torch.Tensor:
        on, _ = prompted_activations(model, tokenizer, PROMPTS, INSTRUCTION, layer=LAYER, progress=False)
        return on @ r

    before = projection()
    with steer(model, fitted):  # every block input and attention/MLP output
        exact = projection()
    with steer(model, fitted.interventions(hook_point="resid_post", layer=LAYER)):  # one block output only
        block = projection()
    assert before.abs().min() > 1.0
    assert exact.abs().max() < 1e-3 and block.abs().max() < 1e-3
    assert hook_count(model) == 0


def test_layers_mode_ablates_chosen_block_outputs_and_round_trips(smollm2: Any, tmp_path: Path) -> None:
    model, tokenizer = smollm2
    config = AblationConfig(instruction=INSTRUCTION, layer=LAYER, mode="layers", layers=[4, 12], n_prompts=2)
    artifact = fit(model, tokenizer, PROMPTS, config, progress=False).artifact
    sites = [(i.layer, i.hook_point) for i in artifact.interventions()]
    assert sites == [(4, "resid_post"), (12, "resid_post")]
    store = Store(tmp_path / "store")
    store.save("fr", artifact)
    loaded = store.load("fr", model)
    assert isinstance(loaded, DirectionAblation) and loaded.layers == [4, 12] and loaded.mode == "layers"
    assert torch.equal(loaded.direction, artifact.direction) and loaded.config["read_layer"] == LAYER
    with pytest.raises(ConfigError, match="Fix:"):
        fit(model, tokenizer, PROMPTS, AblationConfig(instruction=INSTRUCTION, layer=LAYER, layers=[3]))

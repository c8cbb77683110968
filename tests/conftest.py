"""Shared fixtures: the real bundled model, loaded once per test session."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from saesteer.data import sample_path


@pytest.fixture(scope="session")
def smollm2() -> tuple[Any, Any]:
    """(model, tokenizer) of the real SmolLM2-135M-Instruct (GGUF converted once, then cached)."""
    from saesteer.models import load_model

    torch.manual_seed(0)
    return load_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def sentiment_prompts() -> list[str]:
    return list(json.loads(sample_path("sentiment/prompts.json").read_text()))


def chat_batch(tokenizer: Any, prompts: list[str]) -> dict[str, torch.Tensor]:
    """Left-padded chat-formatted batch."""
    from saesteer.data.chat import chat_prompt, encode

    return dict(encode(tokenizer, [chat_prompt(tokenizer, p) for p in prompts], templated=True))


def _is_transformers_output_capture(hook: Any) -> bool:
    """transformers (>= 5.24) installs permanent output-capturing hooks the first time a model is called with
    ``output_hidden_states=True``; they are inert outside such a call and are not ours to remove."""
    return getattr(hook, "__module__", "") == "transformers.utils.output_capturing"


def hook_count(model: torch.nn.Module) -> int:
    """Forward and pre-forward hooks registered anywhere in the model (besides transformers' own capture hooks)."""
    hooks = [h for m in model.modules() for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values())]
    return sum(not _is_transformers_output_capture(h) for h in hooks)


@pytest.fixture(autouse=True)
def _shared_model_left_unhooked(request: pytest.FixtureRequest) -> Any:
    """Every test that touches the shared SmolLM2 must leave it with no hooks (they would leak into later tests)."""
    yield
    if "smollm2" in request.fixturenames:
        model, _ = request.getfixturevalue("smollm2")
        assert hook_count(model) == 0, f"{request.node.nodeid} left {hook_count(model)} hooks on the shared model"


@pytest.fixture(scope="session")
def smollm2_sae(smollm2: tuple[Any, Any]) -> tuple[Any, dict[str, Any]]:
    """A TopK SAE trained by saesteer (sae-lens) on SmolLM2 layer 8, once per test session."""
    from saesteer.saes import SAETrainConfig, train_sae

    model, tokenizer = smollm2
    config = SAETrainConfig(layer=8, d_sae=1152, k=16, tokens=16_384, steps=200, batch_size=512, lr=1e-3)
    return train_sae(model, tokenizer, config, progress=False)


def store_with_sae(path: Any, sae: Any, layer: int = 8) -> str:
    """A store directory holding ``sae`` as SmolLM2's SAE for ``layer``."""
    from saesteer.store import Store

    Store(path).save_sae(f"sae-l{layer}", sae, model_id="smollm2-135m-instruct", layer=layer)
    return str(path)


def corrsteer_argv(store: str, *, name: str = "caps", layers: str = "8", extra: tuple[str, ...] = ()) -> list[str]:
    """``saesteer train corrsteer`` arguments for the capitals task on SmolLM2."""
    return [
        "train",
        "corrsteer",
        "--model",
        "smollm2-135m-instruct",
        "--task",
        "capitals",
        "--layers",
        layers,
        "--store",
        store,
        "--name",
        name,
        *extra,
    ]

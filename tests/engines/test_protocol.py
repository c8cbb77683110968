"""Every registered method (the README's example included) through every verb: a tiny real fit on SmolLM2
-> Store.save -> Store.load -> steer() changes the logits and leaves them bit-identical afterwards ->
``saesteer generate`` -> ``saesteer eval task`` -> a one-unit ``bench`` run -> ``vector export``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from saesteer.bench import BenchConfig, run_bench
from saesteer.cli.main import main
from saesteer.data import sample_path
from saesteer.engines.registry import method_names
from saesteer.engines.training import train
from saesteer.errors import MissingEndMarkerError
from saesteer.runtime import steer
from saesteer.store import Store
from tests.conftest import chat_batch, store_with_sae

README = Path(__file__).resolve().parents[2] / "README.md"
MODEL = "smollm2-135m-instruct"


def readme_example() -> str:
    """The Python block of the README's "Adding a method" example."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- example: add-a-method -->\n```python\n(.*?)```\n<!-- end example -->", text, re.S)
    assert found, "README lost its add-a-method example"
    return found.group(1)


exec(compile(readme_example(), str(README), "exec"), {"__name__": "readme_example"})  # registers prompt-pair

TINY: dict[str, dict[str, Any]] = {
    "ablation": {"instruction": "Reply only in French.", "layer": 6, "n_prompts": 4},
    "caa": {"data": str(sample_path("sentiment/pairs.jsonl")), "layer": 8},
    "corrsteer": {"task": "capitals", "layers": [8], "samples": 16, "batch_size": 16},
    "prosv": {
        "layer": 6,
        "data": str(sample_path("axbench/train.jsonl")),
        "concept_id": 2,
        "epochs": 1,
        "batch_size": 2,
        "max_examples": 2,
        "max_response_tokens": 16,
    },
    "psr": {
        "layers": [6],
        "trait": "Answer in a very happy, enthusiastic tone.",
        "data": str(sample_path("axbench/instructions.jsonl")),
        "n_prompts": 4,
        "max_new_tokens": 8,
        "epochs": 1,
        "batch_size": 2,
        "dev_fraction": 0.25,
        "alpha": 1.0,
    },
    "prompt-pair": {"layer": 6},
    "sae_edit": {"sae": "sae-l8", "edits": ["3=10", "40+=5"]},
}
PROMPTS = ["How was your weekend?", "Describe your city.", "What is a balance sheet?", "Tell me a story."]


def test_every_registered_method_has_a_tiny_config_here():
    assert set(method_names()) <= set(TINY), "add a tiny config for each new method to TINY"


@pytest.fixture
def store(tmp_path: Path, smollm2_sae: Any) -> Store:
    """A fresh store holding SmolLM2's layer-8 SAE (CorrSteer reads it)."""
    return Store(store_with_sae(tmp_path / "store", smollm2_sae[0]))


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(TINY))
def test_method_through_every_verb(method: str, smollm2: Any, store: Store, tmp_path: Path, capsys: Any) -> None:
    model, tokenizer = smollm2
    fitted, record = train(method, model, tokenizer, TINY[method], store=store, name="art", progress=False)
    assert record is not None and record.method == method and record.model_fingerprint
    loaded = store.load("art", model)
    assert type(loaded) is type(fitted.artifact) and loaded.layers == fitted.artifact.layers

    batch = chat_batch(tokenizer, PROMPTS)
    with torch.no_grad():
        before = model(**batch).logits
        with steer(model, loaded, alpha=8.0):
            steered = model(**batch).logits
        after = model(**batch).logits
    assert not torch.equal(before, steered), f"{method} did not change the logits"
    assert torch.equal(before, after), f"{method} left the model changed"
    capsys.readouterr()

    root = str(store.root)
    argv = ["generate", "--model", MODEL, "--store", root, "--vector", "art", "--alpha=4", "--max-new-tokens", "4"]
    assert main([*argv, PROMPTS[0]]) == 0
    out = capsys.readouterr().out
    assert "unsteered" in out and "alpha +4" in out

    evaluate = ["eval", "task", "--model", MODEL, "--store", root, "--vector", "art", "--task", "capitals"]
    assert main([*evaluate, "--limit", "2"]) == 0
    assert "steered" in capsys.readouterr().out

    spec: dict[str, Any] = {"kind": method, "artifact": "art", "factors": [1.0]}
    bench_config = {
        "model": MODEL,
        "store": root,
        "out": str(tmp_path / "bench"),
        "name": "one-unit",
        "tasks": [{"kind": "mmlu", "limit": 1}],
        "methods": [spec],
    }
    if getattr(loaded, "positions", None) == "after_prompt":  # MMLU's plain prompt has no chat-turn marker
        with pytest.raises(MissingEndMarkerError, match="set 'positions:' on the method"):
            run_bench(BenchConfig.model_validate(bench_config), progress=False)
        spec["positions"] = "prompt_and_generated_last"
    rows = run_bench(BenchConfig.model_validate(bench_config), progress=False).rows
    assert any(row.method == method and row.n == 1 for row in rows)

    code = main(["vector", "export", "art", "--store", root, "--out", str(tmp_path / "art.safetensors")])
    out = capsys.readouterr().out
    if loaded.additive_vector() is None:
        assert code == 2 and "error:" in out and "Fix:" in out
    else:
        assert code == 0 and (tmp_path / "art.safetensors").is_file()


def test_cli_trains_a_runtime_registered_method_from_flags_and_a_config_file(
    smollm2: Any, tmp_path: Path, capsys: Any
) -> None:
    root = str(tmp_path / "store")
    assert main(["train", "prompt-pair", "--model", MODEL, "--store", root, "--name", "flags", "--layer", "5"]) == 0
    config = tmp_path / "pair.yaml"
    config.write_text("layer: 7\nplus: I am delighted.\n")
    assert (
        main(["train", "prompt-pair", "--model", MODEL, "--store", root, "--name", "file", "--config", str(config)])
        == 0
    )
    store = Store(root)
    assert store.get("flags").layer == 5 and store.get("file").layer == 7
    assert store.get("file").config["plus"] == "I am delighted."
    capsys.readouterr()
    config.write_text("layer: 7\npluss: typo\n")
    assert (
        main(["train", "prompt-pair", "--model", MODEL, "--store", root, "--name", "bad", "--config", str(config)]) == 2
    )
    out = capsys.readouterr().out
    assert "pluss" in out and "Fix:" in out and "Traceback" not in out

"""``--backend vllm`` on generate and eval task, and ``run_task``, on the real engine: one request list per
call, and greedy output equal to the HF backend's (the session's engine stands in for the one the CLI would
start, so the test pays for one engine)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from saesteer.cli.main import main
from saesteer.data import sample_path
from saesteer.store import Store
from saesteer.tasks import run_task
from saesteer.tasks.mmlu import MMLUTask
from saesteer.vectors import SteeringVector

MODEL = "smollm2-135m-instruct"


@pytest.fixture
def calls(engine: Any, smollm2: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every ``engine.complete`` call (prompts, alpha, seed); ``backends.load`` answers vllm with the engine."""
    seen: list[dict[str, Any]] = []
    complete = engine.complete

    def recording(prompts: Any, **options: Any) -> Any:
        seen.append({"prompts": list(prompts), "alpha": options.get("alpha"), "seed": options.get("seed")})
        return complete(prompts, **options)

    def load(name: str, *, backend: str = "hf", **options: Any) -> tuple[Any, Any]:
        return (engine, engine.tokenizer) if backend == "vllm" else smollm2

    monkeypatch.setattr(engine, "complete", recording)
    monkeypatch.setattr(engine, "close", lambda: None)  # the session's engine outlives each command
    monkeypatch.setattr("saesteer.backends.load", load)
    return seen


@pytest.fixture
def store(tmp_path: Path) -> str:
    vector = torch.randn(576, generator=torch.Generator().manual_seed(0))
    root = tmp_path / "store"
    Store(root).save("v", SteeringVector(4 * vector / vector.norm(), layer=8, model_id=MODEL))
    return str(root)


def test_generate_on_vllm_sends_the_grid_at_once_and_prints_the_hf_texts(
    store: str, calls: list[dict[str, Any]], capsys: Any
) -> None:
    argv = ["generate", "--model", MODEL, "--store", store, "--vector", "v", "--alpha=-4,4", "--max-new-tokens", "6"]
    prompts = ["Hi there.", "Describe your city."]
    assert main([*argv, *prompts]) == 0
    hf = capsys.readouterr().out
    assert main([*argv, "--backend", "vllm", *prompts]) == 0
    assert capsys.readouterr().out == hf
    assert [c["alpha"] for c in calls] == [[0.0, 0.0, -4.0, -4.0, 4.0, 4.0]]  # one request list


def test_eval_task_on_vllm_writes_the_same_records_and_names_the_backend(
    store: str, calls: list[dict[str, Any]], tmp_path: Path, capsys: Any
) -> None:
    argv = ["eval", "task", "--model", MODEL, "--store", store, "--vector", "v", "--task", "capitals", "--limit", "3"]
    assert main([*argv, "--out", str(tmp_path / "hf.json")]) == 0
    assert main([*argv, "--backend", "vllm", "--out", str(tmp_path / "vllm.json")]) == 0
    assert "generation, vllm): unsteered" in capsys.readouterr().out
    hf, vllm = (json.loads((tmp_path / f"{b}.json").read_text()) for b in ("hf", "vllm"))
    assert (hf["backend"], vllm["backend"]) == ("hf", "vllm")
    assert {k: v for k, v in vllm.items() if k != "backend"} == {k: v for k, v in hf.items() if k != "backend"}
    assert [len(c["prompts"]) for c in calls] == [3, 3]  # unsteered, steered: one call each


def test_run_task_sends_every_sample_in_one_call_with_the_seed(
    engine: Any, smollm2: Any, calls: list[dict[str, Any]]
) -> None:
    model, tokenizer = smollm2
    task = MMLUTask(
        sample_path("tasks/mmlu_sample.jsonl"), scoring=("first_token", "letter_logits"), tokenizer=tokenizer
    )
    samples = task.all_samples()[:3]
    vector = SteeringVector(torch.ones(576), layer=8, positions="all")
    options = {"steering": vector, "alpha": [0.0, 1.0, 2.0], "batch_size": 2, "seed": 5}
    on_vllm = run_task(engine, tokenizer, task, samples, **options)
    assert [(len(c["prompts"]), c["seed"], c["alpha"]) for c in calls] == [(3, 5, [0.0, 1.0, 2.0])]
    on_hf = run_task(model, tokenizer, task, samples, **options)
    assert [(r.sample.id, r.generation) for r in on_vllm] == [(r.sample.id, r.generation) for r in on_hf]
    for ours, reference in zip(on_vllm, on_hf, strict=True):
        assert ours.scores == pytest.approx(reference.scores, abs=1e-4)  # letter logits from vLLM's logprobs

"""One bench recipe on both backends: the vLLM run's records and leaderboard have the HF run's format, and
greedy generations and scores are equal; sampling on vLLM is reproducible per seed (request i: seed + i)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch

from saesteer.bench import BenchConfig, BenchResult, run_bench
from saesteer.bench.models import BenchModels
from saesteer.bench.records import RecordFile
from saesteer.errors import ConfigError
from saesteer.store import Store
from saesteer.tasks import capitals_task, run_task
from saesteer.vectors import SteeringVector

MODEL = "smollm2-135m-instruct"


def _config(tmp_path: Path, backend: str) -> BenchConfig:
    store = Store(tmp_path / "store")
    if not store.find():
        vector = torch.randn(576, generator=torch.Generator().manual_seed(0))
        store.save("away", SteeringVector(vector / vector.norm() * 6.0, layer=10, model_id=MODEL, positions="all"))
    return BenchConfig.model_validate(
        {
            "model": MODEL,
            "backend": backend,
            "store": str(store.root),
            "out": str(tmp_path / backend),
            "batch_size": 64,
            "bootstrap": 100,
            "tasks": [
                {"kind": "mmlu", "limit": 4},
                {"kind": "harmbench", "limit": 3, "max_new_tokens": 8},
                {"kind": "axbench", "n_concepts": 1, "n_instructions": 2, "max_new_tokens": 8, "temperature": 0.0},
            ],
            "methods": [
                {"kind": "unsteered"},
                {"kind": "prompting", "tasks": ["harmbench"]},
                {"kind": "caa", "name": "away", "artifact": "away", "factors": [1.0, 2.0]},
            ],
        }
    )


Runs = tuple[BenchResult, BenchResult, list[int]]


@pytest.fixture(scope="module")
def runs(engine: Any, smollm2: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """(HF run, vLLM run, the number of prompts of each engine call in the vLLM run)."""
    tmp_path = tmp_path_factory.mktemp("bench")
    hf = run_bench(_config(tmp_path, "hf"), progress=False, models=BenchModels.of_hf(*smollm2))
    sizes: list[int] = []
    complete = engine.complete

    def recording(prompts: Any, **options: Any) -> Any:
        sizes.append(len(prompts))
        return complete(prompts, **options)

    engine.complete = recording
    try:
        models = BenchModels(MODEL, "vllm", engine, engine.tokenizer, reference=smollm2)  # the proxy judge reads HF
        vllm = run_bench(_config(tmp_path, "vllm"), progress=False, models=models)
    finally:
        del engine.complete  # only the bench run is recorded, not the later tests' calls
    yield hf, vllm, sizes


def test_both_backends_write_records_and_leaderboards_of_one_format(runs: Runs) -> None:
    hf, vllm, _ = runs
    assert len(hf.records) == len(vllm.records) == 4 * 3 + 3 * 4 + 2 * 3
    assert {r.backend for r in hf.records} == {"hf"} and {r.backend for r in vllm.records} == {"vllm"}
    assert [r.key[:5] for r in vllm.records] == [r.key[:5] for r in hf.records]
    assert [set(asdict(r)) for r in vllm.records] == [set(asdict(r)) for r in hf.records]
    assert [set(r.scores) for r in vllm.records] == [set(r.scores) for r in hf.records]
    assert [(r.task, r.metric, r.method, r.factor, r.n) for r in vllm.rows] == [
        (r.task, r.metric, r.method, r.factor, r.n) for r in hf.rows
    ]
    assert {r.backend for r in vllm.rows} == {"vllm"} and {r.backend for r in hf.rows} == {"hf"}
    boards = {b: json.loads((out.out / "leaderboard.json").read_text()) for b, out in (("hf", hf), ("vllm", vllm))}
    assert set(boards["hf"]) == set(boards["vllm"]) and boards["vllm"]["context"]["backend"] == "vllm"
    assert "| vllm |" in (vllm.out / "leaderboard.md").read_text()


def test_greedy_generations_and_scores_are_equal(runs: Runs) -> None:
    hf, vllm, _ = runs
    for ours, reference in zip(vllm.records, hf.records, strict=True):
        where = f"{ours.key[:5]}: {ours.generation!r} != {reference.generation!r}"
        assert (ours.prompt, ours.generation, ours.n_tokens) == (
            reference.prompt,
            reference.generation,
            reference.n_tokens,
        ), where
        assert ours.scores == pytest.approx(reference.scores, abs=1e-4), where  # AxBench perplexity: same HF model
    assert [r.score for r in vllm.rows] == pytest.approx([r.score for r in hf.rows], abs=1e-6)
    assert [r.ser for r in vllm.rows] == [r.ser for r in hf.rows]
    assert any(r.method == "away" and r.ser is not None for r in vllm.rows)  # the vector changed some outputs


def test_sampling_on_vllm_is_reproducible_per_seed(engine: Any) -> None:
    task = capitals_task()
    samples = task.samples("test")[:4]

    def texts(seed: int) -> list[str]:
        scored = run_task(engine, engine.tokenizer, task, samples, temperature=1.0, seed=seed)
        return [r.generation for r in scored]

    first = texts(3)
    assert texts(3) == first
    assert texts(4) != first


def test_each_unit_goes_to_the_engine_as_one_request_list(runs: Runs) -> None:
    _, vllm, sizes = runs
    # mmlu: unsteered, away x 2 factors; harmbench: unsteered, prompting, away x 2; axbench: unsteered, away x 2
    assert sizes == [4, 8, 3, 3, 6, 2, 4]
    assert len(vllm.records) == sum(sizes)


def test_a_results_directory_resumes_only_its_backends_records(engine: Any, smollm2: Any, tmp_path: Path) -> None:
    full = _config(tmp_path, "hf")
    config = full.model_copy(update={"tasks": full.tasks[:1], "methods": full.methods[:1]})  # mmlu, unsteered
    run_bench(config, progress=False, models=BenchModels.of_hf(*smollm2))
    models = BenchModels(MODEL, "vllm", engine, engine.tokenizer, reference=smollm2)
    result = run_bench(config.model_copy(update={"backend": "vllm"}), progress=False, models=models)
    assert {r.backend for r in result.records} == {"vllm"} and len(result.records) == 4
    assert len(RecordFile(Path(config.out) / "records.jsonl").read()) == 8  # both backends' records are kept
    with pytest.raises(ConfigError, match=r"backend 'hf'.*run on 'vllm'.*Fix:"):
        run_bench(config, progress=False, models=models)

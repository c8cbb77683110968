"""The bench's ``backend`` choice in the main environment: recipe validation, records and leaderboards that
name their backend, and the vllm code path (one request list per unit, HF only for fitting and judging) run
through an engine stand-in that generates with the HF model."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import yaml

from saesteer.bench import BenchConfig, run_bench
from saesteer.bench.aggregate import LeaderboardRow
from saesteer.bench.config import MethodSpec
from saesteer.bench.methods import resolve
from saesteer.bench.models import BenchModels
from saesteer.bench.records import BenchRecord, RecordFile
from saesteer.bench.report import load_rows, markdown
from saesteer.data import sample_path
from saesteer.errors import ConfigError
from saesteer.recipes import load_recipe
from saesteer.store import Store
from saesteer.tasks.axbench import AxBenchTask
from saesteer.vectors import SteeringVector
from tests.bench.engine_stub import EngineStub

MODEL = "smollm2-135m-instruct"


def _config(tmp_path: Path, out: str, **overrides: Any) -> BenchConfig:
    store = Store(tmp_path / "store")
    if not store.find():
        torch.manual_seed(0)
        store.save("away", SteeringVector(torch.randn(576), layer=8, model_id=MODEL, positions="all"))
    data = {
        "model": MODEL,
        "store": str(store.root),
        "out": str(tmp_path / out),
        "batch_size": 64,  # every unit is one HF batch, as it is one request list on vLLM: same padding
        "bootstrap": 100,
        "tasks": [
            {"kind": "mmlu", "limit": 3},
            {"kind": "axbench", "n_concepts": 1, "n_instructions": 2, "max_new_tokens": 5},
        ],
        "methods": [
            {"kind": "unsteered"},
            {"kind": "caa", "artifact": "away", "factors": [1.0, 4.0], "tasks": ["axbench"]},
        ],
        **overrides,
    }
    return BenchConfig.model_validate(data)


def _recipe(tmp_path: Path, **fields: Any) -> Path:
    path = tmp_path / "r.yaml"
    body = {"job": "bench", "model": MODEL, "tasks": [{"kind": "mmlu", "limit": 1}], "methods": [{"kind": "unsteered"}]}
    path.write_text(yaml.safe_dump({**body, **fields}))
    return path


def test_the_recipe_backend_defaults_to_hf_and_is_validated(tmp_path: Path) -> None:
    assert load_recipe(_recipe(tmp_path)).backend == "hf"  # type: ignore[attr-defined]
    assert load_recipe(_recipe(tmp_path, backend="vllm")).backend == "vllm"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"backend: Input should be 'hf' or 'vllm'.*Fix:"):
        load_recipe(_recipe(tmp_path, backend="tpu"))


def test_records_and_rows_written_before_the_backend_field_read_as_hf(tmp_path: Path) -> None:
    record = BenchRecord("mmlu", "mmlu", "unsteered", 0.0, "s1", "p", "g", 1.0)
    line = asdict(record)
    del line["backend"]
    (tmp_path / "records.jsonl").write_text(json.dumps(line) + "\n")
    (old,) = RecordFile(tmp_path / "records.jsonl").read()
    assert old.backend == "hf" and old.key == ("mmlu", "mmlu", "unsteered", 0.0, "s1", "hf")
    row = LeaderboardRow("mmlu", "m", "unsteered", "unsteered", MODEL, "-", "0", 1.0, 1.0, 1.0, None, 1, "-", 1.0, None)
    saved = asdict(row)
    del saved["backend"]
    (tmp_path / "leaderboard.json").write_text(json.dumps({"rows": [saved]}))
    (loaded,) = load_rows(tmp_path)
    assert loaded.backend == "hf"
    table = markdown([loaded, LeaderboardRow(**{**asdict(loaded), "backend": "vllm"})])
    assert "| model | backend |" in table and f"| {MODEL} | vllm |" in table and f"| {MODEL} | hf |" in table


def test_the_vllm_path_sends_each_unit_at_once_and_matches_hf_greedy(smollm2: Any, tmp_path: Path) -> None:
    model, tokenizer = smollm2
    hf = run_bench(_config(tmp_path, "hf"), progress=False, models=BenchModels.of_hf(model, tokenizer))
    engine = EngineStub(model, tokenizer)
    models = BenchModels(MODEL, "vllm", engine, tokenizer, reference=smollm2)  # the proxy judge reads HF
    vllm = run_bench(_config(tmp_path, "vllm", backend="vllm"), progress=False, models=models)
    # one request list per (task, unit, method): mmlu unsteered, axbench unsteered, axbench caa (both factors)
    assert [len(call["prompts"]) for call in engine.calls] == [3, 2, 4]
    assert engine.calls[-1]["alpha"] == [1.0, 1.0, 4.0, 4.0] and not engine.closed  # the caller's engine stays up
    assert {r.backend for r in hf.records} == {"hf"} and {r.backend for r in vllm.records} == {"vllm"}

    def same(record: BenchRecord) -> tuple[Any, ...]:
        return (record.key[:5], record.prompt, record.generation, record.score, record.scores, record.n_tokens)

    assert [same(r) for r in vllm.records] == [same(r) for r in hf.records]
    assert [(r.task, r.metric, r.method, r.factor, r.score) for r in vllm.rows] == [
        (r.task, r.metric, r.method, r.factor, r.score) for r in hf.rows
    ]
    assert {r.backend for r in vllm.rows} == {"vllm"}
    board = (tmp_path / "vllm" / "leaderboard.md").read_text()
    assert board.startswith(f"# Leaderboard: {MODEL} (vllm)") and "| vllm |" in board
    assert json.loads((tmp_path / "vllm" / "leaderboard.json").read_text())["context"]["backend"] == "vllm"


def test_a_results_directory_resumes_only_its_backends_records(smollm2: Any, tmp_path: Path) -> None:
    model, tokenizer = smollm2
    config = _config(tmp_path, "out", tasks=[{"kind": "mmlu", "limit": 2}], methods=[{"kind": "unsteered"}])
    run_bench(config, progress=False, models=BenchModels.of_hf(model, tokenizer))
    engine = EngineStub(model, tokenizer)
    models = BenchModels(MODEL, "vllm", engine, tokenizer, reference=smollm2)
    result = run_bench(config.model_copy(update={"backend": "vllm"}), progress=False, models=models)
    assert len(engine.calls) == 1 and {r.backend for r in result.records} == {"vllm"} and len(result.records) == 2
    assert len(RecordFile(tmp_path / "out" / "records.jsonl").read()) == 4  # both backends' records are kept
    with pytest.raises(ConfigError, match=r"backend 'hf'.*run on 'vllm'.*Fix:"):
        run_bench(config, progress=False, models=models)


def test_on_vllm_a_method_fitted_on_the_units_pairs_is_fitted_on_the_hf_model(smollm2: Any) -> None:
    axbench = AxBenchTask(
        sample_path("axbench/concepts.jsonl"),
        sample_path("axbench/train.jsonl"),
        sample_path("axbench/instructions.jsonl"),
        SimpleNamespace(name="none"),  # type: ignore[arg-type]
        n_concepts=1,
        n_instructions=2,
    )
    (unit,) = axbench.units()
    task = SimpleNamespace(name="axbench", task=SimpleNamespace(contrast_pairs=lambda u: axbench.contrast_pairs(u)[:2]))
    models = BenchModels(MODEL, "vllm", object(), smollm2[1], reference=smollm2)  # the engine is never touched
    resolved = resolve(MethodSpec(kind="caa", layer=8, positions="all"), unit, task, None, models)
    assert resolved.steering.layer == 8 and resolved.steering.vector.shape == (576,) and resolved.positions == "all"

"""The bench's ``backend`` choice in the main environment: recipe validation, records and leaderboards that
name their backend, and fitting on the HF model under backend vllm (runs on the real engine:
tests/backends/vllm/test_backend_choice.py)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from saesteer.bench.aggregate import LeaderboardRow
from saesteer.bench.config import MethodSpec
from saesteer.bench.methods import resolve
from saesteer.bench.models import BenchModels
from saesteer.bench.records import BenchRecord, RecordFile
from saesteer.bench.report import load_rows, markdown
from saesteer.data import sample_path
from saesteer.errors import ConfigError
from saesteer.recipes import load_recipe
from saesteer.tasks.axbench import AxBenchTask

MODEL = "smollm2-135m-instruct"


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

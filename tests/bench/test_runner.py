from __future__ import annotations

import json

import pytest

from saesteer.bench import BenchConfig, run_bench
from saesteer.bench.records import RecordFile
from saesteer.store import Store


def _config(tmp_path, **overrides):
    data = {
        "model": "smollm2-135m-instruct",
        "store": str(tmp_path / "store"),
        "out": str(tmp_path / "out"),
        "name": "tiny",
        "batch_size": 8,
        "tasks": [
            {"kind": "mmlu", "limit": 4},
            {"kind": "harmbench", "limit": 3, "max_new_tokens": 6},
            {"kind": "axbench", "n_concepts": 1, "n_instructions": 2, "max_new_tokens": 6},
        ],
        "methods": [
            {"kind": "unsteered"},
            {"kind": "prompting"},
            {"kind": "caa", "layer": 8, "factors": [1.0, 4.0], "positions": "all", "tasks": ["axbench"]},
        ],
    }
    data.update(overrides)
    return BenchConfig.model_validate(data)


def test_bench_end_to_end_resumes_and_stores_its_result(smollm2, tmp_path):
    config = _config(tmp_path)
    result = run_bench(config, progress=False)
    # mmlu 4 x 2 methods, harmbench 3 x 2, axbench 2 x (1 + 1 + 2 factors)
    assert len(result.records) == 8 + 6 + 8
    out = tmp_path / "out"
    for name in (
        "records.jsonl",
        "leaderboard.json",
        "leaderboard.md",
        "sweep_axbench.png",
        "axbench_concept_vs_fluency.png",
    ):
        assert (out / name).is_file(), name
    tasks = {(r.task, r.metric) for r in result.rows}
    assert tasks == {("mmlu", "first_token"), ("mmlu", "letter_logits"), ("harmbench", "refusal"), ("axbench", "hm")}
    caa = next(r for r in result.rows if r.method == "caa")
    assert caa.layers == "8" and caa.judge.startswith("proxy") and caa.n == 1
    assert "proxy" in (out / "leaderboard.md").read_text()
    stored = Store(tmp_path / "store").get("tiny", kind="eval_result")
    assert len(stored.config["rows"]) == len(result.rows)

    # a rerun computes nothing new; a cut last line is dropped and its record redone
    path = out / "records.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][:20])
    again = run_bench(config, progress=False)
    assert len(again.records) == len(result.records)
    assert [r.key for r in again.records] == [r.key for r in RecordFile(path).read()]
    assert json.loads(path.read_text().splitlines()[-1])["task"] == "axbench"


def test_unknown_method_field_is_a_clear_error(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="colour"):
        _config(tmp_path, methods=[{"kind": "unsteered", "colour": "red"}])
    with pytest.raises(ValidationError, match="artifact"):
        _config(tmp_path, methods=[{"kind": "prosv"}])
    with pytest.raises(ValidationError, match=r"unknown method kind 'astrology'.*corrsteer"):
        _config(tmp_path, methods=[{"kind": "astrology", "artifact": "x"}])
    with pytest.raises(ValidationError, match="'layer'"):
        _config(tmp_path, methods=[{"kind": "caa"}])

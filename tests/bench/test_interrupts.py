"""Failures inside a benchmark: a judge that fails leaves the model untouched; Ctrl-C keeps finished records
and a rerun completes without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from saesteer.bench import BenchConfig, run_bench
from saesteer.bench.models import BenchModels
from saesteer.bench.records import RecordFile
from saesteer.eval.judges import JudgeError
from tests.conftest import chat_batch, hook_count


def test_a_failing_judge_leaves_the_model_bit_identical_and_unhooked(smollm2, tmp_path):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, ["Name a colour.", "Count to three."])
    with torch.no_grad():
        before = model(**batch).logits
    hooks = hook_count(model)
    config = BenchConfig.model_validate(
        {
            "model": "smollm2-135m-instruct",
            "out": str(tmp_path / "out"),
            "tasks": [
                {"kind": "mmlu", "limit": 2},
                {
                    "kind": "axbench",
                    "n_concepts": 1,
                    "n_instructions": 2,
                    "max_new_tokens": 4,
                    "judge": {"kind": "openai", "model": "m", "base_url": "http://127.0.0.1:9"},
                },
            ],
            "methods": [
                {"kind": "caa", "layer": 8, "factors": [4.0], "positions": "all", "tasks": ["axbench"]},
                {"kind": "unsteered"},
            ],
        }
    )
    with pytest.raises(JudgeError, match="Fix:"):
        run_bench(config, progress=False, models=BenchModels.of_hf(model, tokenizer))
    assert hook_count(model) == hooks
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, before)
    assert len(RecordFile(tmp_path / "out/records.jsonl").read()) == 2  # the finished MMLU records are kept


def test_ctrl_c_keeps_finished_records_and_a_rerun_completes(tmp_path, smollm2):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "job": "bench",
                "model": "smollm2-135m-instruct",
                "out": str(tmp_path / "out"),
                "batch_size": 2,
                "tasks": [{"kind": "harmbench", "limit": 8, "max_new_tokens": 4}],
                "methods": [{"kind": "unsteered"}, {"kind": "prompting"}],
            }
        )
    )
    command = [sys.executable, "-m", "saesteer", "bench", "--recipe", str(recipe)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ)
    records = tmp_path / "out/records.jsonl"
    deadline = time.time() + 300
    while (not records.exists() or len(RecordFile(records).read()) < 2) and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted" in out
    kept = RecordFile(records).read()
    assert 2 <= len(kept) < 16
    rerun = subprocess.run(command, capture_output=True, text=True, env=os.environ, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    final = RecordFile(records).read()
    assert len(final) == 16 and len({r.key for r in final}) == 16
    assert [r.key for r in final[: len(kept)]] == [r.key for r in kept]

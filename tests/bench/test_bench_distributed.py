"""``accelerate launch`` of ``saesteer bench`` on 2 CPU processes: same records as one process; a rank that
dies makes the launch fail with a clear message and leaves no eval_result in the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import torch
import yaml

from saesteer.bench.records import RecordFile
from saesteer.cli.main import main
from saesteer.store import Store
from tests.test_distributed import _free_port


def _launcher() -> list[str]:
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",  # torchrun-style launcher; on a CPU-only machine each rank uses gloo
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "saesteer",
    ]


def _recipe(tmp_path, name: str, **fields) -> str:
    recipe = {
        "job": "bench",
        "model": "smollm2-135m-instruct",
        "store": str(tmp_path / f"store-{name}"),
        "out": str(tmp_path / f"out-{name}"),
        "batch_size": 2,
        "tasks": [
            {"kind": "mmlu", "limit": 4},
            {"kind": "harmbench", "limit": 4, "max_new_tokens": 4},
            {"kind": "axbench", "n_concepts": 1, "n_instructions": 2, "max_new_tokens": 4},
        ],
        "methods": [
            {"kind": "unsteered"},
            {"kind": "caa", "layer": 8, "factors": [1.0, 4.0], "positions": "all", "tasks": ["axbench"]},
        ],
        **fields,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def _comparable(path) -> list[dict]:
    rows = []
    for record in RecordFile(path).read():
        row = {k: v for k, v in record.__dict__.items() if k != "seconds"}
        row["scores"] = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in record.scores.items()}
        rows.append(row)
    return rows


def test_two_process_bench_writes_the_records_of_a_single_process_run(tmp_path, smollm2):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sharded = _recipe(tmp_path, "sharded")
    done = subprocess.run(
        [*_launcher(), "bench", "--recipe", sharded], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same kernels as the workers
    try:
        assert main(["bench", "--recipe", _recipe(tmp_path, "single")]) == 0
    finally:
        torch.set_num_threads(threads)
    a, b = _comparable(tmp_path / "out-sharded/records.jsonl"), _comparable(tmp_path / "out-single/records.jsonl")
    assert json.loads((tmp_path / "out-sharded/context.json").read_text())["world_size"] == 2
    assert len(a) == 4 + 4 + 2 * 3
    assert a == b
    assert len(Store(tmp_path / "store-sharded").find(kind="eval_result")) == 1  # rank 0 only
    board = json.loads((tmp_path / "out-sharded/leaderboard.json").read_text())["rows"]
    assert [r["score"] for r in board] == [
        r["score"] for r in json.loads((tmp_path / "out-single/leaderboard.json").read_text())["rows"]
    ]


def test_a_rank_killed_mid_run_fails_the_launch_and_writes_no_eval_result(tmp_path, smollm2):
    recipe = _recipe(
        tmp_path,
        "killed",
        tasks=[{"kind": "harmbench", "limit": 24, "max_new_tokens": 24}],
        methods=[
            {"kind": "unsteered"},
            {"kind": "prompting", "name": "prompt-a"},
            {"kind": "prompting", "name": "prompt-b"},
        ],
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = subprocess.Popen(
        [*_launcher(), "bench", "--recipe", recipe],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    records = tmp_path / "out-killed/records.jsonl"
    deadline = time.time() + 600
    while not records.exists() and time.time() < deadline and launch.poll() is None:
        time.sleep(0.5)
    assert records.exists(), "the first method's records should have been gathered and written"
    victims = [p for p in psutil.Process(launch.pid).children(recursive=True) if p.environ().get("RANK") == "1"]
    assert victims, "rank 1 should still be running"
    victims[0].kill()
    output, _ = launch.communicate(timeout=600)
    assert launch.returncode != 0
    assert "another process stopped" in output or "exitcode" in output.lower()
    assert Store(tmp_path / "store-killed").find(kind="eval_result") == []
    finished = RecordFile(records).read()
    assert finished and len(finished) % 24 == 0  # whole (unit, method) blocks only
    assert not (tmp_path / "out-killed/leaderboard.json").exists()

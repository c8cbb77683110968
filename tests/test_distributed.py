"""Sharded CorrSteer harvest over 2 CPU processes (gloo) equals the single-process harvest."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from saesteer.distributed import World, gather, world
from saesteer.engines import corrsteer
from saesteer.stats import FeatureStats
from saesteer.tasks import capitals_task
from tests.conftest import corrsteer_argv, store_with_sae

SAMPLES, BATCH = 12, 4


def test_single_process_world_is_a_no_op():
    assert world() == World(0, 1)
    assert gather([1, 2], World()) == [1, 2]
    assert World(1, 2).my_batches(10, 3) == [(3, 6), (9, 10)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _harvest(sae_dir: str) -> corrsteer.Harvest:
    from saesteer.models import load_model
    from saesteer.saes import load_sae

    model, tokenizer = load_model("smollm2-135m-instruct")
    return corrsteer.harvest(
        model, tokenizer, capitals_task(), {8: load_sae(sae_dir)}, limit=SAMPLES, batch_size=BATCH, progress=False
    )


def _worker(rank: int, size: int, port: int, sae_dir: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(size))
    torch.set_num_threads(1)  # two processes on two cores
    dist.init_process_group("gloo", rank=rank, world_size=size)
    try:
        found = _harvest(sae_dir)
        if world().is_main:
            save_file(found.stats.to_tensors(), os.path.join(out_dir, "stats.safetensors"))
            Path(out_dir, "generations.json").write_text(json.dumps([asdict(g) for g in found.generations]))
    finally:
        dist.destroy_process_group()


def test_two_process_harvest_equals_one_process(tmp_path, smollm2_sae):
    sae_dir = str(tmp_path / "sae")
    smollm2_sae[0].save_model(sae_dir)
    mp.spawn(_worker, args=(2, _free_port(), sae_dir, str(tmp_path)), nprocs=2, join=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same kernels as the workers, so activations match bit for bit
    try:
        single = _harvest(sae_dir)
    finally:
        torch.set_num_threads(threads)
    merged = FeatureStats.from_tensors(load_file(tmp_path / "stats.safetensors"))
    assert merged.n == single.stats.n == SAMPLES and merged.n_pos == single.stats.n_pos
    for name, value in single.stats.to_tensors().items():
        torch.testing.assert_close(merged.to_tensors()[name], value, rtol=1e-12, atol=1e-9, msg=name)
    records = json.loads((tmp_path / "generations.json").read_text())
    assert records == json.loads(json.dumps([asdict(g) for g in single.generations]))


def test_accelerate_launch_of_the_cli_matches_a_single_process_run(tmp_path, smollm2_sae):
    import subprocess
    import sys

    from saesteer.cli.main import main
    from saesteer.store import Store

    stores = {name: store_with_sae(tmp_path / name, smollm2_sae[0]) for name in ("sharded", "single")}
    extra = ("--samples", str(SAMPLES), "--batch-size", str(BATCH))
    sharded_argv, single_argv = (corrsteer_argv(stores[name], extra=extra) for name in ("sharded", "single"))
    launcher = [
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
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launcher, *sharded_argv], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(single_argv) == 0
    finally:
        torch.set_num_threads(threads)
    sharded, single = Store(stores["sharded"]), Store(stores["single"])
    assert len(sharded.find(kind="vector")) == 1  # only rank 0 wrote
    a, b = sharded.load_feature_stats("caps-stats"), single.load_feature_stats("caps-stats")
    assert a.n == b.n == SAMPLES
    torch.testing.assert_close(a.pearson(), b.pearson(), rtol=1e-9, atol=1e-9)
    assert sharded.get("caps").config["features"] == single.get("caps").config["features"]

"""CorrSteer harvest on 1 vs 2 processes (torch.distributed, gloo on CPU): samples/s and peak memory
per process. On this 2-core machine 1 process uses 2 threads and each of 2 processes uses 1 thread; on
a GPU node each process would own a GPU. Writes benchmarks/results/harvest_scaling.{json,md}.

    .venv/bin/python benchmarks/harvest_scaling.py --store runs/corrsteer-demo/store --samples 96
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(rank: int, size: int, port: int, args: argparse.Namespace, out: str) -> None:
    from saesteer.engines import corrsteer
    from saesteer.models import load_model
    from saesteer.store import Store
    from saesteer.tasks import capitals_task

    torch.set_num_threads(max(1, 2 // size))
    if size > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(size))
        dist.init_process_group("gloo", rank=rank, world_size=size)
    model, tokenizer = load_model(args.model)
    store = Store(args.store)
    saes = {layer: store.load_sae(store.find_sae(args.model, layer).name) for layer in args.layer_list}
    task = capitals_task()
    items = (task.samples("train") + task.samples("val") + task.samples("test"))[: args.samples]
    if size > 1:
        dist.barrier()
    start = time.perf_counter()
    corrsteer.harvest(model, tokenizer, task, saes, samples=items, batch_size=args.batch_size, progress=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out, f"rank{rank}.json").write_text(json.dumps({"seconds": seconds, "peak_rss_mb": peak}))
    if size > 1:
        dist.destroy_process_group()


def measure(size: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_run, args=(size, _port(), args, out), nprocs=size, join=True)
        ranks = [json.loads(Path(out, f"rank{r}.json").read_text()) for r in range(size)]
    seconds = max(r["seconds"] for r in ranks)
    return {
        "processes": size,
        "seconds": seconds,
        "samples_per_s": args.samples / seconds,
        "peak_rss_mb_per_process": [r["peak_rss_mb"] for r in ranks],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--store", default="runs/corrsteer-demo/store")
    parser.add_argument("--layers", default="4,8,12,16,20")
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "harvest_scaling"))
    args = parser.parse_args()
    args.layer_list = [int(x) for x in args.layers.split(",")]
    runs = [measure(size, args) for size in (1, 2, 1, 2)]  # interleaved: 1, 2, 1, 2
    command = "python benchmarks/harvest_scaling.py " + " ".join(sys.argv[1:])
    Path(args.out).with_suffix(".json").write_text(json.dumps({"command": command, "runs": runs}, indent=2))
    lines = [
        "# CorrSteer harvest: 1 vs 2 processes (CPU, gloo)",
        "",
        f"Command: `{command}`",
        "",
        f"{args.samples} capitals prompts, SAEs at layers {args.layer_list}, batch {args.batch_size}; "
        "1 process x 2 threads vs 2 processes x 1 thread on a 2-core machine.",
        "",
        "| processes | harvest s | samples/s | peak RSS per process (MB) |",
        "|---:|---:|---:|---|",
        *[
            f"| {r['processes']} | {r['seconds']:.1f} | {r['samples_per_s']:.2f} | "
            f"{', '.join(f'{m:.0f}' for m in r['peak_rss_mb_per_process'])} |"
            for r in runs
        ],
    ]
    Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

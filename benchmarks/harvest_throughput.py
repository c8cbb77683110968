"""CorrSteer harvest cost: samples/s and tokens/s of a harvest (generate + SAE reads + statistics) vs
plain greedy generation of the same prompts, interleaved repetitions; and peak memory (max RSS of a
fresh process) for 100 vs 1,000 harvested samples. Writes benchmarks/results/harvest_throughput.{json,md}.

    .venv/bin/python benchmarks/harvest_throughput.py --store runs/corrsteer-demo/store --layers 4,8,12,16,20
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from saesteer.engines import corrsteer
from saesteer.models import load_model
from saesteer.store import Store
from saesteer.tasks import Sample, capitals_task, run_task


def prompts(n: int) -> list[Sample]:
    """n capitals questions (the 150 shipped ones, cycled with a varying suffix so none repeats)."""
    base = capitals_task().samples("train") + capitals_task().samples("test")
    return [Sample(f"q{i}", f"{base[i % len(base)].prompt} (#{i})", base[i % len(base)].target) for i in range(n)]


def load(args: argparse.Namespace):
    model, tokenizer = load_model(args.model)
    store = Store(args.store)
    layers = [int(x) for x in args.layers.split(",")]
    return model, tokenizer, {layer: store.load_sae(store.find_sae(args.model, layer).name) for layer in layers}


def memory_run(args: argparse.Namespace) -> None:
    model, tokenizer, saes = load(args)
    found = corrsteer.harvest(
        model,
        tokenizer,
        capitals_task(),
        saes,
        samples=prompts(args.samples),
        batch_size=args.batch_size,
        progress=False,
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples": found.stats.n, "peak_rss_mb": peak_mb}))


def throughput(args: argparse.Namespace) -> dict:
    model, tokenizer, saes = load(args)
    task, items = capitals_task(), prompts(args.throughput_samples)
    plain_s, harvest_s, ratios, tokens = [], [], [], 0
    for rep in range(args.reps):
        order = ("plain", "harvest") if rep % 2 == 0 else ("harvest", "plain")
        times = {}
        for kind in order:
            start = time.perf_counter()
            if kind == "plain":
                records = run_task(model, tokenizer, task, items, batch_size=args.batch_size, templated=task.chat)
                tokens = sum(len(tokenizer(r.generation)["input_ids"]) for r in records)
            else:
                corrsteer.harvest(
                    model, tokenizer, task, saes, samples=items, batch_size=args.batch_size, progress=False
                )
            times[kind] = time.perf_counter() - start
        plain_s.append(times["plain"])
        harvest_s.append(times["harvest"])
        ratios.append(times["plain"] / times["harvest"])
    n = len(items)
    return {
        "samples": n,
        "generated_tokens": tokens,
        "layers": sorted(saes),
        "d_sae": next(iter(saes.values())).cfg.d_sae,
        "plain_samples_per_s": n / statistics.median(plain_s),
        "harvest_samples_per_s": n / statistics.median(harvest_s),
        "plain_tokens_per_s": tokens / statistics.median(plain_s),
        "harvest_tokens_per_s": tokens / statistics.median(harvest_s),
        "throughput_ratio_median": statistics.median(ratios),
        "ratios": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--store", default="runs/corrsteer-demo/store")
    parser.add_argument("--layers", default="4,8,12,16,20")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--throughput-samples", type=int, default=64)
    parser.add_argument("--samples", type=int, default=0, help="internal: run one memory measurement")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "harvest_throughput"))
    args = parser.parse_args()
    if args.samples:
        memory_run(args)
        return
    result = {"command": "python benchmarks/harvest_throughput.py " + " ".join(sys.argv[1:]), **throughput(args)}
    memory = []
    for n in (100, 1000):
        child = [
            sys.executable,
            __file__,
            "--samples",
            str(n),
            "--store",
            args.store,
            "--layers",
            args.layers,
            "--model",
            args.model,
            "--batch-size",
            str(args.batch_size),
        ]
        memory.append(
            json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        )
    result["memory"] = memory
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [
        "# CorrSteer harvest throughput and memory",
        "",
        f"Command: `{result['command']}`",
        "",
        f"{result['samples']} capitals prompts, {result['generated_tokens']} generated tokens, SAEs at layers "
        f"{result['layers']} (d_sae {result['d_sae']}), batch {args.batch_size}, {args.reps} interleaved repetitions.",
        "",
        "| run | samples/s | tokens/s |",
        "|---|---:|---:|",
        f"| plain generate | {result['plain_samples_per_s']:.2f} | {result['plain_tokens_per_s']:.1f} |",
        f"| harvest (generate + SAE reads + stats) | {result['harvest_samples_per_s']:.2f} "
        f"| {result['harvest_tokens_per_s']:.1f} |",
        "",
        f"Harvest / plain throughput: median {result['throughput_ratio_median']:.3f} "
        f"(all: {', '.join(f'{r:.3f}' for r in result['ratios'])}).",
        "",
        "| harvested samples | peak RSS of the process (MB) |",
        "|---:|---:|",
        *[f"| {m['samples']} | {m['peak_rss_mb']:.0f} |" for m in memory],
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

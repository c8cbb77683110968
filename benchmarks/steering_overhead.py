"""Steering overhead: tokens/s of plain generate vs steered generate, per position policy.

Interleaved repetitions (plain, then each policy, repeated), medians and ratios against the plain
run of the same repetition, plus the spread. Also a batched factor sweep (8 alphas in one call)
vs 8 sequential calls. Writes benchmarks/results/steering_overhead.{json,md}.

    .venv/bin/python benchmarks/steering_overhead.py --reps 10
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from saesteer.data.chat import chat_prompt, encode
from saesteer.models import load_model
from saesteer.runtime import steer

POLICIES = ["all", "after_prompt", "prompt_and_generated_last", "f2+l2", "generated"]
PROMPTS = [
    "How was your weekend?",
    "Describe the city you live in.",
    "What do you think about Mondays?",
    "Tell me about your favourite season.",
    "What is it like to travel by train?",
    "How do you feel about rainy days?",
    "What do you think of public libraries?",
    "Describe a typical morning.",
]


def timed_generate(model: Any, batch: dict[str, torch.Tensor], new_tokens: int, context: Any) -> float:
    """Generated tokens per second for one greedy generate call of exactly ``new_tokens`` tokens."""
    start = time.perf_counter()
    with context, torch.no_grad():
        model.generate(**batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    return batch["input_ids"].shape[0] * new_tokens / (time.perf_counter() - start)


def summarise(values: list[float]) -> dict[str, float]:
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {
        "median": statistics.median(values),
        "q1": quartiles[0],
        "q3": quartiles[2],
        "min": min(values),
        "max": max(values),
    }


def overhead(model: Any, tokenizer: Any, vector: torch.Tensor, batch_size: int, reps: int, new_tokens: int) -> dict:
    texts = [chat_prompt(tokenizer, p) for p in PROMPTS[:batch_size]]
    batch = dict(encode(tokenizer, texts, templated=True))
    timed_generate(model, batch, 4, nullcontext())  # warm-up
    plain: list[float] = []
    ratios: dict[str, list[float]] = {p: [] for p in POLICIES}
    speeds: dict[str, list[float]] = {p: [] for p in POLICIES}
    runs = [None, *POLICIES]
    for rep in range(reps):
        order = runs[rep % len(runs) :] + runs[: rep % len(runs)]  # rotate so no run always goes first
        measured = {}
        for policy in order:
            context = nullcontext() if policy is None else steer(model, vector, layer=8, alpha=4.0, positions=policy)
            measured[policy] = timed_generate(model, batch, new_tokens, context)
        plain.append(measured[None])
        for policy in POLICIES:
            speeds[policy].append(measured[policy])
            ratios[policy].append(measured[policy] / measured[None])
    return {
        "batch_size": batch_size,
        "plain_tokens_per_s": summarise(plain),
        "policies": {
            p: {"tokens_per_s": summarise(speeds[p]), "ratio_vs_plain": summarise(ratios[p])} for p in POLICIES
        },
    }


def factor_sweep(model: Any, tokenizer: Any, vector: torch.Tensor, reps: int, new_tokens: int) -> dict:
    alphas = [-8.0, -4.0, -2.0, -1.0, 1.0, 2.0, 4.0, 8.0]
    text = chat_prompt(tokenizer, PROMPTS[0])
    single = dict(encode(tokenizer, [text], templated=True))
    batched = dict(encode(tokenizer, [text] * len(alphas), templated=True))

    def one_call() -> float:
        start = time.perf_counter()
        timed_generate(model, batched, new_tokens, steer(model, vector, layer=8, alpha=alphas))
        return time.perf_counter() - start

    def eight_calls() -> float:
        start = time.perf_counter()
        for alpha in alphas:
            timed_generate(model, single, new_tokens, steer(model, vector, layer=8, alpha=alpha))
        return time.perf_counter() - start

    speedups, batched_s, sequential_s = [], [], []
    for rep in range(reps):
        if rep % 2:  # alternate which variant runs first
            sequential, together = eight_calls(), one_call()
        else:
            together, sequential = one_call(), eight_calls()
        batched_s.append(together)
        sequential_s.append(sequential)
        speedups.append(sequential / together)
    return {
        "alphas": alphas,
        "one_batched_call_s": summarise(batched_s),
        "eight_sequential_calls_s": summarise(sequential_s),
        "speedup": summarise(speedups),
    }


def markdown(results: dict) -> str:
    lines = [
        "# Steering overhead",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}; model {results['model']}, {results['new_tokens']} new tokens per call, "
        f"{results['reps']} interleaved repetitions; ratio = steered / plain tokens/s within the same repetition.",
        "",
        "| batch | policy | tokens/s (median) | ratio median | ratio IQR | ratio min-max |",
        "|---:|---|---:|---:|---|---|",
    ]
    for run in results["overhead"]:
        plain = run["plain_tokens_per_s"]["median"]
        lines.append(f"| {run['batch_size']} | plain | {plain:.1f} | 1.000 | | |")
        for policy, row in run["policies"].items():
            r = row["ratio_vs_plain"]
            lines.append(
                f"| {run['batch_size']} | {policy} | {row['tokens_per_s']['median']:.1f} | {r['median']:.3f} "
                f"| {r['q1']:.3f}-{r['q3']:.3f} | {r['min']:.3f}-{r['max']:.3f} |"
            )
    sweep = results["factor_sweep"]
    lines += [
        "",
        f"Factor sweep, 8 alphas: one batched call {sweep['one_batched_call_s']['median']:.2f} s vs 8 sequential calls "
        f"{sweep['eight_sequential_calls_s']['median']:.2f} s: speedup {sweep['speedup']['median']:.2f}x "
        f"(min {sweep['speedup']['min']:.2f}, max {sweep['speedup']['max']:.2f}).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "steering_overhead"))
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    torch.manual_seed(0)
    vector = torch.randn(model.config.hidden_size)
    vector = 8 * vector / vector.norm()
    results = {
        "command": "python benchmarks/steering_overhead.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "model": args.model,
        "reps": args.reps,
        "new_tokens": args.new_tokens,
        "overhead": [
            overhead(model, tokenizer, vector, int(b), args.reps, args.new_tokens) for b in args.batch_sizes.split(",")
        ],
        "factor_sweep": factor_sweep(model, tokenizer, vector, max(3, args.reps // 2), args.new_tokens),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()

"""Output tokens/s of steered generation on vLLM against vLLM unsteered and HF ``generate`` (same prompts, one run).

For each batch size B (1, 8, 32, 64): HF unsteered, HF steered (one vector, saesteer's hook runtime), vLLM
unsteered, vLLM steered (one vector, saesteer's worker extension); at B = 32 also vLLM with K distinct vectors in
one batch (K = 1, 8, 32; request i uses vector i mod K). Every request generates exactly ``--tokens`` tokens
(HF ``min_new_tokens``, vLLM ``ignore_eos``), greedy, float32; the vector is a random direction of norm 8 at
layer 12 applied at every position (the most work a vector does: speed does not depend on what it encodes).
vLLM runs in-process, eager, prefix caching off (repetitions reuse prompts). Configurations are interleaved
within each repetition in a rotated order; medians and IQR over repetitions. Writes
benchmarks/results/vllm_throughput.{json,md}.

    OMP_NUM_THREADS=2 VLLM_ENABLE_V1_MULTIPROCESSING=0 VLLM_CPU_KVCACHE_SPACE=2 \\
        .venv-vllm/bin/python benchmarks/vllm_throughput.py --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from saesteer.backends.vllm import VLLMModel
from saesteer.backends.vllm.wire import EXTRA_ARGS_KEY, cache_salt, encode_entries
from saesteer.data import sample_path
from saesteer.data.chat import chat_prompt, encode
from saesteer.models import load_model
from saesteer.runtime import steer
from saesteer.vectors import SteeringVector

sys.path.insert(0, str(Path(__file__).parent))
from steering_overhead import summarise, timed_generate

MODEL = "smollm2-135m-instruct"
LAYER = 12


def prompts(count: int) -> list[str]:
    rows: list[str] = []
    for name in ("instructions.jsonl", "train_instructions.jsonl"):
        rows += [json.loads(line)["instruction"] for line in sample_path(f"axbench/{name}").read_text().splitlines()]
    return [rows[i % len(rows)] for i in range(count)]


def vectors(count: int, width: int) -> list[SteeringVector]:
    generator = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        v = torch.randn(width, generator=generator)
        out.append(SteeringVector(v / v.norm() * 8.0, layer=LAYER, positions="all"))
    return out


def vllm_runner(engine: VLLMModel, texts: list[str], steering: list[SteeringVector | None], tokens: int) -> Callable:
    from vllm import SamplingParams

    ids = engine.prompt_ids(texts)
    requests, params = [], []
    for row, vector in zip(ids, steering, strict=True):
        options: dict[str, Any] = {"max_tokens": tokens, "ignore_eos": True, "temperature": 0.0}
        prompt: dict[str, Any] = {"prompt_token_ids": row}
        if vector is not None:
            encoded = encode_entries(engine.entries(vector))
            options["extra_args"] = {EXTRA_ARGS_KEY: encoded}
            prompt["cache_salt"] = cache_salt(encoded)
        requests.append(prompt)
        params.append(SamplingParams(**options))

    def run() -> float:
        start = time.perf_counter()
        outputs = engine.llm.generate(requests, params, use_tqdm=False)
        produced = sum(len(o.outputs[0].token_ids) for o in outputs)
        assert produced == len(requests) * tokens
        return produced / (time.perf_counter() - start)

    return run


def hf_runner(model: Any, tokenizer: Any, texts: list[str], vector: SteeringVector | None, tokens: int) -> Callable:
    batch = dict(encode(tokenizer, [chat_prompt(tokenizer, t) for t in texts], templated=True))

    def run() -> float:
        context = steer(model, vector) if vector is not None else _Nothing()
        return timed_generate(model, batch, tokens, context)

    return run


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--distinct", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--distinct-batch", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    engine = VLLMModel(MODEL, enable_prefix_caching=False)
    model, tokenizer = load_model(MODEL)
    pool = vectors(max(args.distinct), engine.shape.width)
    configs: dict[str, Callable[[], float]] = {}
    for size in args.batches:
        texts = prompts(size)
        configs[f"hf_unsteered_b{size}"] = hf_runner(model, tokenizer, texts, None, args.tokens)
        configs[f"hf_steered_b{size}"] = hf_runner(model, tokenizer, texts, pool[0], args.tokens)
        configs[f"vllm_unsteered_b{size}"] = vllm_runner(engine, texts, [None] * size, args.tokens)
        configs[f"vllm_steered_b{size}"] = vllm_runner(engine, texts, [pool[0]] * size, args.tokens)
    texts = prompts(args.distinct_batch)
    for k in args.distinct:
        steering = [pool[i % k] for i in range(args.distinct_batch)]
        configs[f"vllm_k{k}_b{args.distinct_batch}"] = vllm_runner(engine, texts, list(steering), args.tokens)
    for run in configs.values():  # warm-up: first calls allocate and register
        run()
    names = list(configs)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            samples[name].append(configs[name]())
            print(f"rep {rep} {name}: {samples[name][-1]:.1f} tok/s", flush=True)
    stats = {name: summarise(values) for name, values in samples.items()}
    med = {name: s["median"] for name, s in stats.items()}
    ratios: dict[str, float] = {}
    for size in args.batches:
        ratios[f"vllm_steered/vllm_unsteered_b{size}"] = med[f"vllm_steered_b{size}"] / med[f"vllm_unsteered_b{size}"]
        ratios[f"vllm_steered/hf_steered_b{size}"] = med[f"vllm_steered_b{size}"] / med[f"hf_steered_b{size}"]
        ratios[f"hf_steered/hf_unsteered_b{size}"] = med[f"hf_steered_b{size}"] / med[f"hf_unsteered_b{size}"]
    for k in args.distinct:
        ratios[f"k{k}/k1_b{args.distinct_batch}"] = (
            med[f"vllm_k{k}_b{args.distinct_batch}"] / med[f"vllm_k1_b{args.distinct_batch}"]
        )
    result = {
        "command": "OMP_NUM_THREADS=2 VLLM_ENABLE_V1_MULTIPROCESSING=0 VLLM_CPU_KVCACHE_SPACE=2 "
        f".venv-vllm/bin/python benchmarks/vllm_throughput.py --reps {args.reps} --tokens {args.tokens}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "model": MODEL,
        "tokens": args.tokens,
        "reps": args.reps,
        "tok_per_s": stats,
        "ratios": ratios,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vllm_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "vllm_throughput.md").write_text(markdown(result, args))
    print(markdown(result, args))


def markdown(result: dict[str, Any], args: argparse.Namespace) -> str:
    stats = result["tok_per_s"]

    def cell(name: str) -> str:
        s = stats[name]
        return f"{s['median']:.1f} ({s['q1']:.1f}-{s['q3']:.1f})"

    lines = [
        "# vLLM backend throughput (output tokens/s, median and IQR)",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {result['machine']}. Model {result['model']}, float32, greedy, {result['tokens']} new tokens per "
        "request; one random vector of norm 8 at layer 12 on every position; vLLM in-process, eager, prefix "
        "caching off.",
        "",
        "| batch | HF unsteered | HF steered | vLLM unsteered | vLLM steered | vLLM steered / unsteered "
        "| vLLM steered / HF steered |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in args.batches:
        r = result["ratios"]
        lines.append(
            f"| {size} | {cell(f'hf_unsteered_b{size}')} | {cell(f'hf_steered_b{size}')} | "
            f"{cell(f'vllm_unsteered_b{size}')} | {cell(f'vllm_steered_b{size}')} | "
            f"{r[f'vllm_steered/vllm_unsteered_b{size}']:.3f} | {r[f'vllm_steered/hf_steered_b{size}']:.2f}x |"
        )
    lines += ["", f"K distinct vectors in one batch of {args.distinct_batch}:", ""]
    lines += ["| K | tok/s | / K=1 |", "|---:|---:|---:|"]
    for k in args.distinct:
        name = f"vllm_k{k}_b{args.distinct_batch}"
        lines.append(f"| {k} | {cell(name)} | {result['ratios'][f'k{k}/k1_b{args.distinct_batch}']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

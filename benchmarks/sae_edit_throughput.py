"""SAE-edit overhead: tokens/s of plain generate vs generate with SAE-latent edits, against the FLOP bound.

An SAE edit encodes every steered token (2 * d * m FLOPs for d_in = d, d_sae = m) and decodes twice (the
edited and the unedited latents, 2 * 2 * m * d), so per edited layer it adds 6 * d * m FLOPs per token to
the model's ~2 * N (N = parameters used per token, the unembedding included). The bound on tokens/s is therefore
plain * 2N / (2N + layers * 6dm); the benchmark reports the measured ratio steered / plain and that ratio
divided by the bound ratio (1.0 = as fast as the arithmetic allows). SAEs are randomly initialised TopK
SAEs of the recipe's size (4608 latents, k 32): speed does not depend on what they learned. Interleaved
repetitions with a rotated order, medians and IQR. Writes benchmarks/results/sae_edit_throughput.{json,md}.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sae_edit_throughput.py --reps 5
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from sae_lens import SAE, TopKSAEConfig

from saesteer.data.chat import chat_prompt, encode
from saesteer.models import load_model
from saesteer.runtime import Intervention, LatentEdit, SAEEdit, steer

sys.path.insert(0, str(Path(__file__).parent))
from steering_overhead import PROMPTS, summarise, timed_generate

LAYER_SETS = {1: [12], 5: [4, 8, 12, 16, 20]}


def random_sae(d_in: int, d_sae: int, k: int, seed: int) -> Any:
    torch.manual_seed(seed)
    sae = SAE.from_dict(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=k, dtype="float32", device="cpu").to_dict())
    with torch.no_grad():
        for parameter in sae.parameters():
            parameter.normal_(0, 0.02)
    return sae.eval()


def flop_bound(model: Any, d_sae: int, layers: int) -> float:
    """tokens/s ratio the added arithmetic allows: 2N / (2N + layers * 6 d m), N counting the unembedding
    (SmolLM2 ties it to the embedding, whose lookup costs nothing but whose logits matmul does)."""
    params = sum(p.numel() for p in model.parameters())
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    lookup = 0 if tied else model.get_input_embeddings().weight.numel()
    d = model.config.hidden_size
    return 2 * (params - lookup) / (2 * (params - lookup) + layers * 6 * d * d_sae)


def run(model: Any, tokenizer: Any, saes: dict[int, Any], batch_size: int, reps: int, new_tokens: int) -> dict:
    batch = dict(encode(tokenizer, [chat_prompt(tokenizer, p) for p in PROMPTS[:batch_size]], templated=True))
    timed_generate(model, batch, 4, nullcontext())  # warm-up
    edits = [LatentEdit(7, "set", 5.0), LatentEdit(11, "add", 2.0)]
    variants: dict[str, list[Intervention] | None] = {"plain": None}
    for count, layers in LAYER_SETS.items():
        variants[f"{count} layer{'s' if count > 1 else ''}"] = [
            Intervention(layer, SAEEdit(saes[layer], edits), "all") for layer in layers
        ]
    names = list(variants)
    speeds: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names[1:]}
    for rep in range(reps):
        measured = {}
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            items = variants[name]
            context = nullcontext() if items is None else steer(model, items)
            measured[name] = timed_generate(model, batch, new_tokens, context)
        for name in names:
            speeds[name].append(measured[name])
        for name in names[1:]:
            ratios[name].append(measured[name] / measured["plain"])
    d_sae = next(iter(saes.values())).cfg.d_sae
    rows = {}
    for name in names[1:]:
        bound = flop_bound(model, d_sae, int(name.split()[0]))
        ratio = summarise(ratios[name])
        rows[name] = {
            "tokens_per_s": summarise(speeds[name]),
            "ratio_vs_plain": ratio,
            "flop_bound_ratio": bound,
            "ratio_to_bound": ratio["median"] / bound,
        }
    return {"batch_size": batch_size, "plain_tokens_per_s": summarise(speeds["plain"]), "variants": rows}


def markdown(results: dict) -> str:
    lines = [
        "# SAE-edit overhead",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}; model {results['model']}, SAEs d_sae {results['d_sae']} (TopK k "
        f"{results['k']}, random weights), {results['new_tokens']} new tokens per call, {results['reps']} interleaved "
        "repetitions; edits: latent 7 set to 5 and latent 11 += 2 at every position; ratio = edited / plain "
        "tokens/s in the same repetition; bound = 2N / (2N + layers * 6 d m).",
        "",
        "| batch | variant | tokens/s (median) | ratio median | ratio IQR | FLOP-bound ratio | ratio / bound |",
        "|---:|---|---:|---:|---|---:|---:|",
    ]
    for run_ in results["runs"]:
        lines.append(f"| {run_['batch_size']} | plain | {run_['plain_tokens_per_s']['median']:.1f} | 1.000 | | | |")
        for name, row in run_["variants"].items():
            r = row["ratio_vs_plain"]
            lines.append(
                f"| {run_['batch_size']} | SAE edit, {name} | {row['tokens_per_s']['median']:.1f} | {r['median']:.3f} "
                f"| {r['q1']:.3f}-{r['q3']:.3f} | {row['flop_bound_ratio']:.3f} | {row['ratio_to_bound']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--d-sae", type=int, default=4608)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sae_edit_throughput"))
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    layers = sorted({layer for group in LAYER_SETS.values() for layer in group})
    saes = {layer: random_sae(model.config.hidden_size, args.d_sae, args.k, seed=layer) for layer in layers}
    results = {
        "command": "python benchmarks/sae_edit_throughput.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "model": args.model,
        "d_sae": args.d_sae,
        "k": args.k,
        "reps": args.reps,
        "new_tokens": args.new_tokens,
        "runs": [run(model, tokenizer, saes, int(b), args.reps, args.new_tokens) for b in args.batch_sizes.split(",")],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()

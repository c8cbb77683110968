"""PrOSV vs FSSV vs unsteered on AxBench sample concepts, on the bundled model (CPU-sized).

Per concept: train PrOSV (f2+l2) and FSSV (all positions) with the same "lang" objective, data (the concept's
AxBench positives), init, learning rates, steps and seed; generate greedy replies to held-out AxBench instructions
unsteered, with PrOSV as trained (multiplier 1, no sweep) and with FSSV at multipliers 0.25, 0.5 and 1 (its
trained vector sits at every position, so it needs scaling down to stay fluent). Concept presence is the keyword
proxy (concept_rating, 0-2); fluency is the unsteered model's perplexity of the reply (a proxy, lower is better).
"FSSV ppl @ PrOSV concept" interpolates FSSV's perplexity along its multipliers (0 = unsteered) at PrOSV's concept
rating; n/a when PrOSV's rating lies outside FSSV's range. Writes benchmarks/results/prosv_concepts.{json,md}.

    .venv/bin/python benchmarks/prosv_concepts.py --concepts 0,2,9 --layer 10 --examples 12 --epochs 4 --vector-init 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

from saesteer.data import read_rows, sample_path
from saesteer.engines import prosv
from saesteer.engines.prosv_data import load_triples
from saesteer.eval.concept import concept_rating
from saesteer.eval.fluency import perplexity
from saesteer.generation import generate
from saesteer.models import load_model

OUT = Path(__file__).parent / "results"
FSSV_MULTIPLIERS = (0.25, 0.5, 1.0)


def measure(model: Any, tokenizer: Any, concept: str, prompts: list[str], texts: list[str]) -> dict[str, Any]:
    ratings = [concept_rating(concept, t) for t in texts]
    ppl = perplexity(model, tokenizer, prompts, texts)
    return {"concept": sum(ratings) / len(ratings), "ppl": sum(ppl) / len(ppl), "samples": texts[:3]}


def interpolate(points: list[tuple[float, float]], x: float) -> float | None:
    """Linear interpolation of y at x along points sorted by their x (None outside their range)."""
    points = sorted(points)
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def run_concept(model: Any, tokenizer: Any, row: dict[str, Any], prompts: list[str], args: Any) -> dict[str, Any]:
    concept = row["concept"]
    triples = load_triples(sample_path("axbench/train.jsonl"), concept_id=row["concept_id"], limit=args.examples)
    result: dict[str, Any] = {"concept_id": row["concept_id"], "concept": concept}
    plain = generate(model, tokenizer, prompts, max_new_tokens=args.new_tokens, batch_size=len(prompts))
    result["unsteered"] = measure(model, tokenizer, concept, prompts, plain)
    for name, positions in (("prosv", "f2+l2"), ("fssv", "all")):
        config = prosv.ProsvConfig(
            layer=args.layer,
            positions=positions,
            epochs=args.epochs,
            batch_size=args.batch_size,
            max_response_tokens=args.response_tokens,
            seed=args.seed,
            factor_init=args.factor_init,
            vector_init=args.vector_init,
        )
        start = time.time()
        artifact = prosv.fit(model, tokenizer, triples, config, concept=concept)
        multipliers = [1.0] if name == "prosv" else list(FSSV_MULTIPLIERS)
        rows = [p for _ in multipliers for p in prompts]
        alphas = [m for m in multipliers for _ in prompts]
        texts = generate(
            model,
            tokenizer,
            rows,
            steering=artifact,
            alpha=alphas,
            max_new_tokens=args.new_tokens,
            batch_size=len(prompts),
        )
        for index, m in enumerate(multipliers):
            chunk = texts[index * len(prompts) : (index + 1) * len(prompts)]
            result[f"{name}@{m:g}"] = measure(model, tokenizer, concept, prompts, chunk)
        result[f"{name}_train"] = {**artifact.metrics, "seconds": round(time.time() - start, 1)}
    fssv_curve = [(result["unsteered"]["concept"], result["unsteered"]["ppl"])] + [
        (result[f"fssv@{m:g}"]["concept"], result[f"fssv@{m:g}"]["ppl"]) for m in FSSV_MULTIPLIERS
    ]
    result["fssv_ppl_at_prosv_concept"] = interpolate(fssv_curve, result["prosv@1"]["concept"])
    return result


def report(results: list[dict[str, Any]], args: Any, seconds: float) -> str:
    command = "python benchmarks/prosv_concepts.py " + " ".join(sys.argv[1:])
    lines = [
        "# PrOSV vs FSSV vs unsteered on AxBench sample concepts (smollm2-135m-instruct)",
        "",
        f"Command: `{command}` ({seconds / 60:.1f} min on a shared 2-core CPU)",
        "",
        f"Layer {args.layer}, lang loss, {args.examples} AxBench positives per concept, {args.epochs} epochs, "
        f"batch {args.batch_size}, responses cut to {args.response_tokens} tokens, beta={args.factor_init:g}, "
        f"lambda={args.vector_init:g}, released learning rates rescaled to width 576; {args.instructions} held-out "
        f"instructions, greedy, {args.new_tokens} new tokens. "
        "Concept = keyword proxy (0-2), ppl = unsteered model's perplexity of the reply (fluency proxy, lower is "
        "better). PrOSV uses its trained factor (multiplier 1, no sweep); FSSV is shown at multipliers 0.25 to 1.",
        "",
        "| concept | unsteered | PrOSV (as trained) | "
        + " | ".join(f"FSSV x{m:g}" for m in FSSV_MULTIPLIERS)
        + " | FSSV ppl @ PrOSV concept | PrOSV factor |",
        "|---|" + "---:|" * (len(FSSV_MULTIPLIERS) + 4),
    ]
    for r in results:
        keys = ["unsteered", "prosv@1", *(f"fssv@{m:g}" for m in FSSV_MULTIPLIERS)]
        cells = [f"{r[k]['concept']:.2f} / {r[k]['ppl']:.1f}" for k in keys]
        matched = r["fssv_ppl_at_prosv_concept"]
        lines.append(
            f"| {r['concept_id']}: {r['concept'][:45]} | "
            + " | ".join(cells)
            + f" | {'n/a' if matched is None else f'{matched:.1f}'} | {r['prosv_train']['factor']:.1f} |"
        )
    lines += ["", "Sample replies (first instruction):", ""]
    for r in results:
        for key in ("unsteered", "prosv@1", "fssv@0.25", "fssv@1"):
            lines.append(f"- concept {r['concept_id']}, {key}: {r[key]['samples'][0][:160]!r}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concepts", default="0,2,9")
    parser.add_argument("--layer", type=int, default=10)
    parser.add_argument("--examples", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=6)
    parser.add_argument("--response-tokens", type=int, default=32)
    parser.add_argument("--instructions", type=int, default=10)
    parser.add_argument("--new-tokens", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--factor-init", type=float, default=4.0, help="beta (released: 4)")
    parser.add_argument("--vector-init", type=float, default=8.0, help="lambda (released: 8; the paper's grid: 1, 8)")
    args = parser.parse_args()
    start = time.time()
    model, tokenizer = load_model("smollm2-135m-instruct")
    wanted = {int(c) for c in args.concepts.split(",")}
    concepts = [r for r in read_rows(sample_path("axbench/concepts.jsonl")) if r["concept_id"] in wanted]
    instructions = read_rows(sample_path("axbench/instructions.jsonl"))[: args.instructions]
    prompts = [r["instruction"] for r in instructions]
    OUT.mkdir(exist_ok=True)
    results: list[dict[str, Any]] = []
    text = ""
    for row in concepts:
        results.append(run_concept(model, tokenizer, row, prompts, args))
        (OUT / "prosv_concepts.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
        text = report(results, args, time.time() - start)  # rewritten after every concept: partial runs count
        (OUT / "prosv_concepts.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

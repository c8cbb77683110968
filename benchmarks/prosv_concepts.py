"""PrOSV vs FSSV vs unsteered on AxBench concepts, on the bundled model (CPU-sized).

Per concept: train PrOSV (f2+l2) and FSSV (all positions) with the same "lang" objective, data (the concept's
AxBench positives), init, learning rates, steps and seed; generate greedy replies to held-out AxBench evaluation
instructions (shipped, disjoint from the training inputs) unsteered, with PrOSV as trained (multiplier 1, no
sweep) and with FSSV at multipliers 0.25 to 1 (its trained vector sits at every position, generated tokens
included, so it needs scaling down to stay fluent).

Concept presence (PROXIES, named in the report):
  - detector: the fraction of replies a DiffMean concept detector flags (``saesteer.eval.concept_detector``, read
    through the unsteered model at ``--detector-layer``), fitted on AxBench latent-eval responses of the concept
    (positives vs negatives) and scored on a held-out part of them (its accuracy is reported);
  - keywords: the keyword rating (0-2) of ``saesteer.eval.concept``.
Fluency: the unsteered model's perplexity of the reply (geometric mean over replies; a proxy, lower is better).
"FSSV ppl @ PrOSV presence" is FSSV's perplexity where its multiplier sweep (0 = unsteered, then 0.25 ... 1) first
reaches PrOSV's detector presence (linear between the two bracketing multipliers); n/a if it never does.
Writes benchmarks/results/prosv_concepts.{json,md}.

    .venv/bin/python benchmarks/prosv_concepts.py --concepts 2,5,9 --layer 12 --examples 36 --epochs 12
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from saesteer.data import read_rows, sample_path
from saesteer.engines import prosv
from saesteer.engines.prosv.data import load_triples
from saesteer.eval.concept import concept_rating
from saesteer.eval.concept_detector import ConceptDetector, fit_concept_detector
from saesteer.eval.fluency import perplexity
from saesteer.generation import generate
from saesteer.models import load_model

OUT = Path(__file__).parent / "results"
DATA = Path(__file__).parents[2] / "shared" / "data" / "axbench" / "concept10" / "prod_2b_l20_v1"
FSSV_MULTIPLIERS = (0.25, 0.5, 0.75, 1.0)


def measure(detector: ConceptDetector, concept: str, prompts: list[str], texts: list[str]) -> dict[str, Any]:
    ppl = perplexity(detector.model, detector.tokenizer, prompts, texts)
    presence = detector.presence(prompts, texts)
    return {
        "presence": sum(presence) / len(presence),
        "keywords": sum(concept_rating(concept, t) for t in texts) / len(texts),
        "ppl": math.exp(sum(math.log(p) for p in ppl) / len(ppl)),
        "samples": texts[:3],
    }


def interpolate(points: list[tuple[float, float]], x: float) -> float | None:
    """y where the curve first reaches x, walking ``points`` in their order (FSSV's multipliers, 0 first) and
    interpolating linearly inside the first segment that brackets x; None if the curve never reaches x."""
    if points and points[0][0] == x:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if min(x0, x1) <= x <= max(x0, x1) and x0 != x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def concept_detector(
    model: Any, tokenizer: Any, concept_id: int, prompts: list[str], args: Any
) -> tuple[ConceptDetector, float]:
    """Detector fitted on part of the concept's AxBench latent-eval responses (rows whose instruction is an
    evaluation prompt left out); balanced accuracy on the rest."""
    rows = [r for r in read_rows(Path(args.data) / "inference" / "latent_eval_data.jsonl") if r["input"] not in prompts]
    pairs = {
        label: [(r["input"], r["output"]) for r in rows if r["concept_id"] == concept_id and r["category"] == label]
        for label in ("positive", "negative")
    }
    cut = {label: len(found) * 2 // 3 for label, found in pairs.items()}
    detector = fit_concept_detector(
        model,
        tokenizer,
        pairs["positive"][: cut["positive"]],
        pairs["negative"][: cut["negative"]],
        layer=args.detector_layer,
        max_tokens=args.new_tokens,
    )
    return detector, detector.accuracy(pairs["positive"][cut["positive"] :], pairs["negative"][cut["negative"] :])


def run_concept(model: Any, tokenizer: Any, row: dict[str, Any], prompts: list[str], args: Any) -> dict[str, Any]:
    concept = row["concept"]
    triples = load_triples(Path(args.data) / "generate" / "train_data.jsonl", concept_id=row["concept_id"])
    triples = triples[: args.examples]
    detector, accuracy = concept_detector(model, tokenizer, row["concept_id"], prompts, args)
    result: dict[str, Any] = {
        "concept_id": row["concept_id"],
        "concept": concept,
        "detector": {"train_accuracy": detector.train_accuracy, "heldout_accuracy": accuracy},
    }
    plain = generate(model, tokenizer, prompts, max_new_tokens=args.new_tokens, batch_size=len(prompts))
    result["unsteered"] = measure(detector, concept, prompts, plain)
    for name, positions in (("prosv", "f2+l2"), ("fssv", "all")):
        config = prosv.ProsvConfig(
            layer=args.layer,
            concept=concept,
            positions=positions,
            epochs=args.epochs,
            batch_size=args.batch_size,
            max_response_tokens=args.response_tokens,
            seed=args.seed,
            factor_init=args.factor_init,
            vector_init=args.vector_init,
        )
        start = time.time()
        artifact = prosv.train_vector(model, tokenizer, triples, config)
        multipliers = [1.0] if name == "prosv" else list(FSSV_MULTIPLIERS)
        rows = [p for _ in multipliers for p in prompts]
        alphas = [m for m in multipliers for _ in prompts]
        texts = generate(
            model, tokenizer, rows, steering=artifact, alpha=alphas, max_new_tokens=args.new_tokens, batch_size=20
        )
        for index, m in enumerate(multipliers):
            chunk = texts[index * len(prompts) : (index + 1) * len(prompts)]
            result[f"{name}@{m:g}"] = measure(detector, concept, prompts, chunk)
        result[f"{name}_train"] = {**artifact.metrics, "seconds": round(time.time() - start, 1)}
    fssv_curve = [(result["unsteered"]["presence"], result["unsteered"]["ppl"])] + [
        (result[f"fssv@{m:g}"]["presence"], result[f"fssv@{m:g}"]["ppl"]) for m in FSSV_MULTIPLIERS
    ]
    result["fssv_ppl_at_prosv_presence"] = interpolate(fssv_curve, result["prosv@1"]["presence"])
    return result


def report(results: list[dict[str, Any]], args: Any, seconds: float) -> str:
    command = "python benchmarks/prosv_concepts.py " + " ".join(sys.argv[1:])
    keys = ["unsteered", "prosv@1", *(f"fssv@{m:g}" for m in FSSV_MULTIPLIERS)]
    lines = [
        "# PrOSV vs FSSV vs unsteered on AxBench concepts (smollm2-135m-instruct)",
        "",
        f"Command: `{command}` ({seconds / 60:.1f} min on the 2-core CPU)",
        "",
        f"Steering layer {args.layer}, lang loss, {args.examples} AxBench positives per concept, {args.epochs} epochs, "
        f"batch {args.batch_size}, responses cut to {args.response_tokens} tokens, beta={args.factor_init:g}, "
        f"lambda={args.vector_init:g}, released learning rates rescaled to width 576; {args.instructions} held-out "
        f"AxBench evaluation instructions (shipped), greedy, {args.new_tokens} new tokens. PrOSV uses its trained "
        "factor (multiplier 1, no sweep); FSSV is shown at multipliers 0.25 to 1.",
        "",
        "Cells: detector presence (fraction of replies) / keyword rating (0-2) / perplexity (geometric mean). All are "
        f"PROXIES: the detector is a DiffMean concept detector read through the unsteered model at layer "
        f"{args.detector_layer}, fitted on 2/3 of the concept's AxBench latent-eval responses (held-out balanced "
        "accuracy in the last column); perplexity is the unsteered model's, lower is better.",
        "",
        "| concept | " + " | ".join(k.replace("@", " x") for k in keys) + " | FSSV ppl @ PrOSV presence | "
        "PrOSV alpha | detector acc. |",
        "|---|" + "---:|" * (len(keys) + 3),
    ]
    for r in results:
        cells = [f"{r[k]['presence']:.2f} / {r[k]['keywords']:.2f} / {r[k]['ppl']:.1f}" for k in keys]
        matched = r["fssv_ppl_at_prosv_presence"]
        lines.append(
            f"| {r['concept_id']}: {r['concept'][:40]} | "
            + " | ".join(cells)
            + f" | {'n/a' if matched is None else f'{matched:.1f}'} | {r['prosv_train']['factor']:.1f} | "
            f"{r['detector']['heldout_accuracy']:.2f} |"
        )
    lines += ["", "Training (loss first step -> last epoch, seconds):", ""]
    for r in results:
        for name in ("prosv", "fssv"):
            t = r[f"{name}_train"]
            lines.append(
                f"- concept {r['concept_id']} {name}: {t['loss_first_step']:.3f} -> {t['loss_last_epoch']:.3f}, "
                f"alpha {t['factor']:.1f}, |v| {t['direction_norm']:.2f}, {t['steps']} steps, {t['seconds']:.0f} s"
            )
    lines += ["", "Sample replies (first instruction):", ""]
    for r in results:
        for key in ("unsteered", "prosv@1", "fssv@0.5", "fssv@1"):
            lines.append(f"- concept {r['concept_id']}, {key}: {r[key]['samples'][0][:160]!r}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concepts", default="2,5,9")
    parser.add_argument("--data", default=str(DATA), help="an AxBench concept10 config directory")
    parser.add_argument("--layer", type=int, default=12)
    parser.add_argument("--detector-layer", type=int, default=15)
    parser.add_argument("--examples", type=int, default=36)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--response-tokens", type=int, default=64)
    parser.add_argument("--instructions", type=int, default=10)
    parser.add_argument("--new-tokens", type=int, default=48)
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

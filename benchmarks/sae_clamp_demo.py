"""Clamping an SAE feature for a concept vs adding its decoder row vs a CAA vector, on held-out prompts.

1. SAE: the project's recipe (recipes/sae-smollm2-l8.yaml: TopK, 4608 latents, k 32, layer 8, python-docs-chat),
   trained once and cached under --sae-dir.
2. Feature: ``features search --concept`` on the first half of the shipped AxBench examples of the concept
   (AUROC of max-pooled activations, concept vs neutral texts); m = the feature's max pooled activation there.
3. Interventions at layer 8, every position, one magnitude grid g * m (g in --grid):
   clamp (``set`` the latent to g * m, the SAE error term kept), addition of g * m * W_dec[i] (CorrSteer-style),
   and g * m * the unit CAA vector (completion pairs: concept vs neutral AxBench texts, mean over tokens).
4. On held-out instructions (shipped axbench/instructions.jsonl), 32 greedy tokens: concept presence by the
   DiffMean detector proxy (fitted at layer 8 on the first half of the examples, balanced accuracy on the
   second half reported) and by a keyword score, fluency by perplexity under the unsteered model and
   distinct-2; "collapsed" as in the quickstart (distinct-2 < 0.75 x or perplexity > 4 x the unsteered run).
   Matched fluency: per method, the highest presence among settings that did not collapse.
Writes benchmarks/results/sae_clamp_demo.{json,md}.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sae_clamp_demo.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from saesteer.data import read_rows, sample_path
from saesteer.engines import caa
from saesteer.eval.concept import concept_score
from saesteer.eval.concept_detector import fit_concept_detector
from saesteer.eval.fluency import perplexity
from saesteer.eval.scorers import distinct_n
from saesteer.features.search import concept_data, pooled_latents, separation
from saesteer.generation import generate
from saesteer.models import load_model
from saesteer.runtime import Intervention, LatentEdit, SAEEdit, steer
from saesteer.saes import SAETrainConfig, load_sae, train_sae

LAYER = 8


def trained_sae(model: Any, tokenizer: Any, directory: Path) -> Any:
    """The recipe's SAE, trained once and cached in sae-lens's own format."""
    if not (directory / "cfg.json").is_file():
        config = SAETrainConfig(layer=LAYER, d_sae=4608, k=32, tokens=32_768, steps=600, batch_size=1024, lr=4e-4)
        found = train_sae(model, tokenizer, config)
        (found[0] if isinstance(found, tuple) else found).save_model(str(directory))
    return load_sae(str(directory))


def pairs(concept_id: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    rows = read_rows(sample_path("axbench/train.jsonl"))
    positive = [
        (r["input"], r["output"]) for r in rows if r["category"] == "positive" and r["concept_id"] == concept_id
    ]
    negative = [(r["input"], r["output"]) for r in rows if r["category"] == "negative"]
    return positive, negative


def measure(model: Any, tokenizer: Any, prompts: list[str], steering: Any, detector: Any, concept: str) -> dict:
    context = nullcontext() if steering is None else steer(model, steering)
    with context:
        texts = generate(model, tokenizer, prompts, max_new_tokens=32, batch_size=len(prompts))
    return {
        "presence": statistics.mean(detector.presence(prompts, texts)),
        "keyword": statistics.mean(concept_score(concept, t) for t in texts),
        "perplexity": statistics.mean(perplexity(model, tokenizer, prompts, texts)),
        "distinct_2": statistics.mean(distinct_n(t) for t in texts),
        "example": texts[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concept", default="2")
    parser.add_argument("--grid", default="0.5,1,2,4,8,16")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--sae-dir", default="runs/sae-clamp-demo/sae")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sae_clamp_demo"))
    args = parser.parse_args()
    start = time.time()
    torch.manual_seed(0)
    model, tokenizer = load_model("smollm2-135m-instruct")
    sae = trained_sae(model, tokenizer, Path(args.sae_dir))
    data = concept_data(args.concept)
    half_pos, half_neg = len(data.positives) // 2, len(data.negatives) // 2
    concept_acts = pooled_latents(
        model, tokenizer, sae, data.positives[:half_pos], layer=LAYER, hook_point="resid_post"
    )
    neutral_acts = pooled_latents(
        model, tokenizer, sae, data.negatives[:half_neg], layer=LAYER, hook_point="resid_post"
    )
    found = separation(concept_acts, neutral_acts)
    feature = found.ranked(1)[0]
    top = float(found.mean_pos[feature])
    peak = float(concept_acts[:, feature].max())
    positive, negative = pairs(data.concept_id)
    detector = fit_concept_detector(
        model, tokenizer, positive[: len(positive) // 2], negative[: len(negative) // 2], layer=LAYER
    )
    held_accuracy = detector.accuracy(positive[len(positive) // 2 :], negative[len(negative) // 2 :])
    contrast = [{"prompt": p, "positive": a, "negative": b} for (p, a), (_, b) in zip(positive, negative, strict=False)]
    caa_vector = caa.fit_layers(model, tokenizer, contrast[: len(contrast) // 2], layers=[LAYER], read="mean")[LAYER]
    caa_unit = caa_vector.vector / caa_vector.vector.norm()
    row = sae.W_dec[feature].detach().float()
    prompts = [r["instruction"] for r in read_rows(sample_path("axbench/instructions.jsonl"))[: args.prompts]]
    grid = [float(x) for x in args.grid.split(",")]

    base = measure(model, tokenizer, prompts, None, detector, data.description)
    methods: dict[str, list[dict]] = {"clamp (SAE edit)": [], "decoder-row addition": [], "CAA (unit vector)": []}
    for g in grid:
        value = g * peak
        settings = {
            "clamp (SAE edit)": [Intervention(LAYER, SAEEdit(sae, [LatentEdit(feature, "set", value)]), "all")],
            "decoder-row addition": row * value,
            "CAA (unit vector)": caa_unit * value,
        }
        for name, steering in settings.items():
            what = steering if isinstance(steering, list) else [Intervention(LAYER, _add(steering), "all")]
            result = measure(model, tokenizer, prompts, what, detector, data.description)
            result["collapsed"] = result["distinct_2"] < 0.75 * base["distinct_2"] or (
                result["perplexity"] > 4 * base["perplexity"]
            )
            methods[name].append({"g": g, "magnitude": value, **result})
            print(f"{name} g={g}: presence {result['presence']:.2f} ppl {result['perplexity']:.1f}", flush=True)
    matched = {}
    for name, rows in methods.items():
        fluent = [r for r in rows if not r["collapsed"]]
        best = max(fluent, key=lambda r: (r["presence"], -r["perplexity"])) if fluent else None
        collapse = next((r["g"] for r in rows if r["collapsed"]), None)
        matched[name] = {"best_fluent": best, "collapse_at_g": collapse}
    results = {
        "command": "python benchmarks/sae_clamp_demo.py " + " ".join(sys.argv[1:]),
        "concept": {"id": data.concept_id, "description": data.description},
        "feature": {"index": feature, "auroc": float(found.auroc[feature]), "mean_pos": top, "peak": peak},
        "detector": {"train_accuracy": detector.train_accuracy, "heldout_accuracy": held_accuracy},
        "unsteered": base,
        "methods": methods,
        "matched_fluency": matched,
        "seconds": round(time.time() - start, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


def _add(vector: torch.Tensor) -> Any:
    from saesteer.runtime import AddVector

    return AddVector(vector)


def markdown(results: dict) -> str:
    feature, detector, base = results["feature"], results["detector"], results["unsteered"]
    lines = [
        "# Clamping an SAE feature vs decoder-row addition vs CAA",
        "",
        f"Command: `{results['command']}` ({results['seconds']} s, 2-core CPU)  ",
        f"Concept {results['concept']['id']} ({results['concept']['description']}); feature {feature['index']} of the "
        f"recipe SAE at layer {LAYER} (AUROC {feature['auroc']:.2f} on the search half, peak pooled activation "
        f"m = {feature['peak']:.2f}). Presence: DiffMean detector proxy (held-out balanced accuracy "
        f"{detector['heldout_accuracy']:.2f}) and keyword score; fluency: unsteered perplexity and distinct-2.",
        "",
        f"Unsteered: presence {base['presence']:.2f}, keyword {base['keyword']:.2f}, perplexity "
        f"{base['perplexity']:.1f}, distinct-2 {base['distinct_2']:.2f}.",
        "",
        "| method | g (magnitude g x m) | presence (detector) | keyword | perplexity | distinct-2 | collapsed |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for name, rows in results["methods"].items():
        for r in rows:
            lines.append(
                f"| {name} | {r['g']:g} | {r['presence']:.2f} | {r['keyword']:.2f} | {r['perplexity']:.1f} | "
                f"{r['distinct_2']:.2f} | {'yes' if r['collapsed'] else ''} |"
            )
    lines += ["", "At matched fluency (best presence among settings that did not collapse):", ""]
    for name, found in results["matched_fluency"].items():
        best = found["best_fluent"]
        text = (
            "every setting collapsed"
            if best is None
            else (f"presence {best['presence']:.2f} at g = {best['g']:g} (perplexity {best['perplexity']:.1f})")
        )
        lines.append(f"- {name}: {text}; first collapse at g = {found['collapse_at_g']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

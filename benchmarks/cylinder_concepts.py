"""CRH on SmolLM2-135M-Instruct: penalised (L, rho) sweep on AxBench concepts; writes a markdown report.

    SAESTEER_CACHE=/tmp/sc .venv/bin/python benchmarks/cylinder_concepts.py --concepts 3,5,9 --layer 15 --positions all

Outputs: benchmarks/results/cylinder/{results.json, *.png, answers.json} and benchmarks/results/cylinder_concepts.md
(numbers only; the verdict paragraph is written by hand after reading them). Labels are offline PROXIES:
``--labeller detector`` (default) is a DiffMean concept detector fitted on samples kept out of u's training split
(cylinder_labels.py; independent of the axis being added), ``axis`` the projection on u_hat itself (partly
circular, for comparison), ``keywords`` the keyword rating; the keyword rate is reported beside it either way.
P2 follows CRH's sincos_rel.py (``--angle-law official``, default) or saesteer's per-sample variant.

Pilot (prints a markdown table, writes nothing else): where does label 2 occur at all? One sweep per
layer x positions, labelled at keyword threshold 1, threshold 2 derived from the same outputs:

    SAESTEER_CACHE=/tmp/sc .venv/bin/python benchmarks/cylinder_concepts.py --pilot 6,9,12,15 --concepts 0 \
        --n-test 3 --steps 4 --rhos 2 --tokens 16 --max-scale 6 --out /tmp/cyl_pilot
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saesteer.analysis import cylinder as crh
from saesteer.analysis.cylinder_labels import make_labeller
from saesteer.analysis.cylinder_results import save_results
from saesteer.analysis.cylinder_sweep import (
    ConceptRun,
    ProxyLabeller,
    SweepConfig,
    analyze_concept,
    load_concepts,
    summarize,
)
from saesteer.eval.concept import concept_rating
from saesteer.models import load_model

RESULTS = Path(__file__).parent / "results"


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def report(
    summary: dict[str, Any],
    records: list[dict[str, Any]],
    config: SweepConfig,
    labeller: str,
    command: str,
    seconds: float,
    keyword_rates: list[float],
) -> str:
    onset, collapse, p3, p2 = summary["P1_onset"], summary["P1_collapse"], summary["P3"], summary["P2"]
    lines = [
        "# CRH cylinder sweep on SmolLM2-135M-Instruct",
        "",
        f"Command: `{command}`  ({seconds / 60:.1f} min on the shared 2-core CPU)",
        "",
        f"Settings: layer {config.layer}, steering positions `{config.positions}`, L up to {config.max_scale:g}|u| "
        f"in {config.steps} steps, {config.n_rho} rho values, {config.max_new_tokens} new tokens, "
        f"{config.n_test} test samples per concept.",
        "",
        f"Labeller: `{labeller}`; 3 = perplexity under the unsteered model / distinct-2;",
        "not the paper's Llama-3.3-70B judge. L and St are in units of each concept's |u|.",
        f"Calibration (detector / axis labellers): held-out balanced accuracy "
        f"{summary.get('calibration_heldout_accuracy')} (mean over concepts; test-split concept-bearing vs "
        "concept-free responses, threshold fit on the labeller's own split).",
        "",
        "| concept | abs u | mean cos theta | steerable (St>0) | spiral R2 | calib. train / held-out acc. "
        "| label-2 cells | keyword>=1 cells (non-gibberish) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r, rate in zip(records, keyword_rates, strict=True):
        cos = [s["cos_theta"] for s in r["samples"]]
        st = [s["steerability_over_u"] for s in r["samples"]]
        labels = np.asarray([s["labels"] for s in r["samples"]])
        spiral = "n/a" if r["spiral_r2"] is None else f"{r['spiral_r2']:.2f}"
        fit = r["calibration"]
        calib = "n/a" if fit is None else f"{fit['train_accuracy']:.2f} / {fit['heldout_accuracy']:.2f}"
        if fit is not None and "axis_cosine" in fit:
            calib += f" (cos with u {fit['axis_cosine']:.2f})"
        lines.append(
            f"| {r['concept'][:50]} | {r['norm_u']:.1f} | {sum(cos) / len(cos):.2f} | "
            f"{sum(s > 0 for s in st)}/{len(st)} | {spiral} | {calib} | {(labels == crh.CONCEPT).mean():.3f} | "
            f"{rate:.3f} |"
        )
    lines += [
        "",
        f"Samples: {summary['n_samples']}; label fractions over the grid: {summary['label_fractions']}; "
        f"unsteered baseline: {summary['baseline_label_fractions']}.",
        "",
        f"**P1 (penalty delays onset and collapse)** rho grid {records[0]['rhos']}",
        f"- onset (label 2): mean first L/|u| by rho (never = beyond grid) [{_fmt(onset['mean_by_rho'])}], "
        f"reached [{_fmt(onset['reached_by_rho'])}], Spearman(rho, onset) r={onset['spearman_r']:.3f} "
        f"p={onset['spearman_p']:.3g} -> delayed: {onset['delayed']}",
        f"- collapse (label 3): mean first L/|u| by rho [{_fmt(collapse['mean_by_rho'])}], "
        f"reached [{_fmt(collapse['reached_by_rho'])}], Spearman r={collapse['spearman_r']:.3f} "
        f"p={collapse['spearman_p']:.3g} -> delayed: {collapse['delayed']}",
        f"- P1 holds: {summary['P1_holds']}",
        "",
        "**P2 (angle law)** " + _p2_line(p2, summary["P2_holds"]),
        "",
        f"**P3 (cos(v_d,i, v_d,j) does not predict |St_i - St_j|)** r={p3['r']:.3f}, p={p3['p']:.3g}, "
        f"{p3['n_pairs']} within-concept pairs -> holds: {summary['P3_holds']}",
        "",
        "Plots: `cylinder/heatmaps.png`, `cylinder/steerability_vs_angle.png`, `cylinder/phase_pca.png`.",
        "",
    ]
    return "\n".join(lines)


def _p2_line(p2: dict[str, Any] | None, holds: bool | None) -> str:
    """The P2 sentence for either variant (official sincos_rel.py search, or saesteer's per-sample one)."""
    if p2 is None:
        return "not testable: too few steerable samples / concepts"
    if p2["variant"].startswith("official"):
        return (
            f"[{p2['variant']}: one slope St per concept, y = St/|u|^a, x = sin^a cos^(2p-a)] best "
            f"x = sin^{p2['sin_power']:g} cos^{p2['cos_power']:g}, r={p2['r']:.3f} (p={p2['p_value']:.3g} optimistic, "
            f"concept-permutation p={p2['p_permutation']:.3g}); r at the code default sin^2 cos^-1: "
            f"{p2['r_default']:.3f}; {p2['n_samples']} samples from {p2['n_concepts']} concepts, dropped "
            f"{p2['dropped_first_step']} labelled 2 at step 1 and {p2['dropped_zero']} with St = 0 -> holds: {holds}"
        )
    return (
        f"[{p2['variant']}] best k={p2['k']}, m={p2['m']:.2f}, r={p2['r']:.3f} (p={p2['p']:.3g} optimistic, "
        f"permutation p={p2['p_permutation']:.3g}), peak theta {p2['peak_theta_deg']:.1f} deg -> holds: {holds}"
    )


def pilot(model: Any, tokenizer: Any, args: argparse.Namespace) -> str:
    """Markdown table: label-2 / label-3 fractions per layer x positions x keyword threshold (1 and 2)."""
    labeller = ProxyLabeller(model, tokenizer, concept_threshold=1)
    rows = [
        "| layer | positions | threshold | label-2 cells | samples with onset | label-3 cells |",
        "|---|---|---|---|---|---|",
    ]
    for layer in (int(x) for x in args.pilot.split(",")):
        for positions in ("prompt", "all"):
            config = SweepConfig(
                layer=layer,
                n_test=args.n_test,
                steps=args.steps,
                n_rho=args.rhos,
                max_new_tokens=args.tokens,
                max_scale=args.max_scale,
                positions=positions,
            )
            runs = [
                analyze_concept(model, tokenizer, c, s, config, labeller, Path(args.out) / "answers.json")
                for c, s in load_concepts(args.concepts)
            ]
            for threshold in (1, 2):
                concept = np.concatenate([_concept_labels(r, threshold) for r in runs])
                gibberish = np.concatenate([r.labels == crh.GIBBERISH for r in runs])
                rows.append(
                    f"| {layer} | {positions} | {threshold} | {concept.mean():.2f} | "
                    f"{concept.any(axis=(1, 2)).sum()}/{len(concept)} | {gibberish.mean():.2f} |"
                )
    return "\n".join(rows)


def keyword_rate(run: ConceptRun) -> float:
    """Fraction of non-gibberish cells whose output has any concept keyword (the keyword proxy at threshold 1)."""
    kept = run.labels != crh.GIBBERISH
    rated = np.vectorize(lambda text: concept_rating(run.concept, text) >= 1)(np.asarray(run.outputs, dtype=object))
    return float((rated.astype(bool) & kept).sum() / max(int(kept.sum()), 1))


def _concept_labels(run: ConceptRun, threshold: int) -> np.ndarray:
    """Label-2 mask at keyword ``threshold`` from a run labelled at threshold 1 (gibberish is decided first)."""
    rated = np.vectorize(lambda text: concept_rating(run.concept, text) >= threshold)(
        np.asarray(run.outputs, dtype=object)
    )
    return (run.labels == crh.CONCEPT) & rated.astype(bool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concepts", default="0,3,9")
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--n-test", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rhos", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--max-scale", type=float, default=3.0, help="largest L in units of |u| (paper: 3)")
    parser.add_argument("--positions", choices=["prompt", "all"], default="prompt", help="prefill only, or all tokens")
    parser.add_argument("--labeller", choices=["detector", "axis", "keywords"], default="detector", help="label 2")
    parser.add_argument("--reserve", type=int, default=8, help="--labeller detector: samples kept out of u for it")
    parser.add_argument("--concept-threshold", type=int, choices=[1, 2], default=2, help="keyword rating for 2")
    parser.add_argument(
        "--angle-law",
        choices=["official", "per_sample"],
        default="official",
        help="P2 variant (official: sincos_rel.py)",
    )
    parser.add_argument("--pilot", default=None, help="comma-separated layers: print the pilot table and stop")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids oversubscription)")
    parser.add_argument("--out", default=str(RESULTS / "cylinder"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    model, tokenizer = load_model("smollm2-135m-instruct")
    if args.pilot:
        print(pilot(model, tokenizer, args))
        print(f"pilot: {(time.time() - start) / 60:.1f} min")
        return
    config = SweepConfig(
        layer=args.layer,
        n_test=args.n_test,
        steps=args.steps,
        n_rho=args.rhos,
        max_new_tokens=args.tokens,
        max_scale=args.max_scale,
        positions=args.positions,
    )
    labeller = make_labeller(
        args.labeller, model, tokenizer, reserve=args.reserve, concept_threshold=args.concept_threshold
    )
    out = Path(args.out)
    runs = [
        analyze_concept(model, tokenizer, c, s, config, labeller, out / "answers.json")
        for c, s in load_concepts(args.concepts)
    ]
    summary = summarize(runs, angle_law=args.angle_law)
    save_results(runs, summary, config, out, labeller=labeller.name, model_name="smollm2-135m-instruct")
    records = json.loads((out / "results.json").read_text())["concepts"]
    command = "SAESTEER_CACHE=/tmp/sc .venv/bin/python benchmarks/cylinder_concepts.py " + " ".join(sys.argv[1:])
    (RESULTS / "cylinder_concepts.md").write_text(
        report(
            summary,
            records,
            config,
            labeller.name,
            command.strip(),
            time.time() - start,
            [keyword_rate(r) for r in runs],
        )
    )


if __name__ == "__main__":
    main()

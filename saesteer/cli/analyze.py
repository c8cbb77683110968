"""``saesteer analyze cylinder``: the CRH angle / penalty sweep of concept steering (arXiv 2605.01844)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from saesteer.cli.common import console
from saesteer.errors import ConfigError

if TYPE_CHECKING:
    from saesteer.eval.judges import Judge

EXAMPLE = """example:
  saesteer analyze cylinder --model smollm2-135m-instruct --concept 0,5,9 --layer 6 --out runs/cylinder
  saesteer analyze cylinder --model smollm2-135m-instruct --concept "references to cooking" \\
      --data my_samples.jsonl --layer 6 --out runs/cooking --paper --store runs/store

--concept: AxBench concept ids of --data (default: the bundled AxBench sample), or a concept description
when --data rows are {"question", "with_concept", "without_concept" (optional)}. Missing concept-free
responses are the model's greedy answers, cached in OUT/answers.json. u = DiffMean over the training split;
the --n-test held-out samples are steered with v(L, rho) = L (cos t u_hat + (1 - rho) sin t e_perp) on every
prompt token at prefill (--positions prompt, the paper) or on every token, generated ones too (--positions all,
the official penalty script), L in (0, max_scale |u|], rho in [0, 1]. Labels (1 normal, 2 concept, 3 gibberish):
3 = perplexity under the unsteered model / distinct-2 (a proxy); 2 = (--labeller detector, default) a DiffMean
concept detector fitted on --reserve samples kept out of u's training split (held-out accuracy and its cosine
with u are recorded), (judge) a judge's 0-2 concept rating >= --concept-threshold (--judge hf:MODEL or
openai:MODEL@URL; the paper used Llama-3.3-70B), (axis) the mean output-token projection on u_hat itself, the
axis being added (partly circular; a labelled comparison), or (keywords) concept keyword rating >= --concept-threshold.
P2 (--angle-law official, default) follows CRH's sincos_rel.py. Writes OUT/results.json and three plots."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    analyze = subparsers.add_parser(
        "analyze", help="analyses of steering geometry", epilog=EXAMPLE, formatter_class=fmt
    )
    kinds = analyze.add_subparsers(dest="analysis", required=True)
    cyl = kinds.add_parser(
        "cylinder",
        help="CRH: angle to the axis, penalised sweep, steerability tests",
        epilog=EXAMPLE,
        formatter_class=fmt,
    )
    cyl.add_argument("--model", required=True)
    cyl.add_argument("--concept", required=True, help="AxBench ids (0,5,9) or a description for a user --data file")
    cyl.add_argument("--data", default=None, help="AxBench train.jsonl-format or question/with_concept rows")
    cyl.add_argument("--layer", type=int, required=True)
    cyl.add_argument("--out", required=True)
    cyl.add_argument("--n-test", type=int, default=8, help="held-out samples steered per concept")
    cyl.add_argument("--steps", type=int, default=10, help="L grid steps (paper: 25)")
    cyl.add_argument("--rhos", type=int, default=5, help="penalty values in linspace(0, 1) (paper: 20)")
    cyl.add_argument("--max-scale", type=float, default=3.0, help="largest L in units of |u| (paper: 3)")
    cyl.add_argument("--tokens", type=int, default=24, help="new tokens per steered output (paper: 32)")
    cyl.add_argument("--paper", action="store_true", help="the paper's grid: 25 L steps x 20 rho, 32 tokens")
    cyl.add_argument("--axis", choices=["diffmean", "pca", "mean_center"], default="diffmean")
    cyl.add_argument("--hook-point", choices=["resid_pre", "resid_post"], default="resid_pre")
    cyl.add_argument(
        "--positions",
        choices=["prompt", "all"],
        default="prompt",
        help="steer prompt tokens at prefill only (paper) or all tokens, generated ones too (official script)",
    )
    cyl.add_argument(
        "--labeller",
        choices=["detector", "judge", "axis", "keywords"],
        default="detector",
        help="label 2 from: a concept detector independent of u (default), a judge, the projection on u (axis), "
        "or concept keywords",
    )
    cyl.add_argument("--reserve", type=int, default=8, help="--labeller detector: samples kept out of u for it")
    cyl.add_argument("--judge", default=None, help="--labeller judge: hf:MODEL or openai:MODEL@BASE_URL")
    cyl.add_argument(
        "--concept-threshold",
        type=int,
        choices=[1, 2],
        default=None,
        help="label 2 needs this rating: keywords (default 2: two or more keywords), judge (default 1: related)",
    )
    cyl.add_argument(
        "--angle-law",
        choices=["official", "per_sample"],
        default="official",
        help="P2: CRH's sincos_rel.py (one slope St per concept, x = sin^a cos^(2p-a), y = St/|u|^a; default) "
        "or saesteer's per-sample variant (St = L_max - L_onset, y = St/|v_d|^k)",
    )
    cyl.add_argument(
        "--keep-first-step-concept",
        action="store_true",
        help="official P2: keep samples already labelled 2 at the first step (dropped by default)",
    )
    cyl.add_argument(
        "--keep-zero-steerability",
        action="store_true",
        help="official P2: keep samples whose concept has zero steerability (dropped by default)",
    )
    cyl.add_argument("--template", default=None, help="text template with {question} and a final {response}")
    cyl.add_argument("--max-perplexity", type=float, default=500.0, help="gibberish above this perplexity")
    cyl.add_argument("--min-distinct", type=float, default=0.5, help="gibberish below this distinct-2")
    cyl.add_argument("--batch-size", type=int, default=32)
    cyl.add_argument("--seed", type=int, default=0)
    cyl.add_argument("--store", default=None, help="also record an eval_result in this store")
    cyl.add_argument("--name", default="cylinder", help="record name in the store")
    cyl.set_defaults(run=run_cylinder)


def make_judge_from(spec: str | None) -> Judge | None:
    """``hf:MODEL`` (a local HF instruct model) or ``openai:MODEL@BASE_URL`` (key in OPENAI_API_KEY)."""
    from saesteer.eval.judges import HFJudge, OpenAIJudge

    if spec is None:
        return None
    kind, _, rest = spec.partition(":")
    if kind == "hf" and rest:
        return HFJudge(rest)
    if kind == "openai" and "@" in rest:
        model, _, url = rest.partition("@")
        return OpenAIJudge(model, base_url=url)
    raise ConfigError(f"--judge {spec!r} is not a judge spec. Fix: use hf:MODEL or openai:MODEL@BASE_URL.")


def run_cylinder(args: argparse.Namespace) -> None:
    from saesteer.analysis.cylinder_labels import make_labeller
    from saesteer.analysis.cylinder_results import save_results
    from saesteer.analysis.cylinder_sweep import (
        DEFAULT_TEMPLATE,
        SweepConfig,
        analyze_concept,
        load_concepts,
        summarize,
    )
    from saesteer.models import load_model
    from saesteer.store import Store

    fields = {
        "layer": args.layer,
        "template": args.template or DEFAULT_TEMPLATE,
        "n_test": args.n_test,
        "steps": args.steps,
        "n_rho": args.rhos,
        "max_scale": args.max_scale,
        "max_new_tokens": args.tokens,
        "axis": args.axis,
        "hook_point": args.hook_point,
        "positions": args.positions,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
    if args.paper:
        config = SweepConfig.paper(**{k: v for k, v in fields.items() if k not in ("steps", "n_rho", "max_new_tokens")})
    else:
        config = SweepConfig(**fields)
    concepts = load_concepts(args.concept, args.data)
    judge = make_judge_from(args.judge) if args.labeller == "judge" else None
    model, tokenizer = load_model(args.model)
    threshold = args.concept_threshold or (1 if args.labeller == "judge" else 2)
    labeller = make_labeller(
        args.labeller,
        model,
        tokenizer,
        reserve=args.reserve,
        judge=judge,
        concept_threshold=threshold,
        max_perplexity=args.max_perplexity,
        min_distinct=args.min_distinct,
    )
    out = Path(args.out)
    runs = [analyze_concept(model, tokenizer, c, s, config, labeller, out / "answers.json") for c, s in concepts]
    summary = summarize(
        runs,
        seed=args.seed,
        angle_law=args.angle_law,
        drop_first_step_concept=not args.keep_first_step_concept,
        drop_zero_steerability=not args.keep_zero_steerability,
    )
    store = Store(args.store) if args.store else None
    paths = save_results(
        runs, summary, config, out, labeller=labeller.name, model_name=args.model, store=store, name=args.name
    )
    console.print(f"labeller: {labeller.name}")
    if "calibration_heldout_accuracy" in summary:
        accuracy = summary["calibration_heldout_accuracy"]
        console.print(
            f"label-2 detector held-out accuracy {accuracy:.2f}"
            + ("" if accuracy >= 0.8 else " (below 0.8: label 2 is unreliable here; try another layer)")
        )
    console.print(
        f"P1 penalty delays onset and collapse: {summary['P1_holds']}  "
        f"(onset Spearman {summary['P1_onset']['spearman_r']:.3f}, "
        f"collapse {summary['P1_collapse']['spearman_r']:.3f})"
    )
    console.print(
        f"P2 angle law ({args.angle_law}): {summary['P2_holds']}   P3 similarity does not predict St: "
        f"{summary['P3_holds']} (r {summary['P3']['r']:.3f}, p {summary['P3']['p']:.3g})"
    )
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))

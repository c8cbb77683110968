"""PSR on the bundled SmolLM2-135M-Instruct: does the token-wise probe reproduce prompting?

Trait: a happy, enthusiastic tone. Base prompts: the 40 shipped AxBench instructions, or the first
``--n-prompts`` of ``--prompts FILE`` (e.g. AlpacaEval's); the last ``--test`` are held out (never seen in
training or calibration). Triplets (x, x', y') are sampled (temperature 1, seeded; ``--greedy``: greedy) from
the model under x' = the trait instruction as the system turn + x (span QR, the paper's persona setting;
``--span R``: the instruction after the prompt, steering the last prompt token + response).
Reports, on held-out prompts:
  - R^2 and cosine between the predicted and the true prompt-induced difference at the steered
    layer(s), next to the R^2 of the best constant vector (train-mean Delta, i.e. DiffMean on the span);
  - the fraction of span tokens whose gate ReLU(w.h + b) is exactly zero;
  - VADER sentiment (lexicon proxy) and the coherence proxy (mean token log-likelihood under the
    unsteered model) of outputs: unsteered (greedy), prompted (the test triplets' y'), and PSR-steered
    (greedy) at the alpha the binary search found on the dev prompts (target: the prompted answers' own
    coherence, TA@Cp-style).
Writes benchmarks/results/psr_probe[_TAG].{json,md}.

    .venv/bin/python benchmarks/psr_probe.py --prompts ../shared/data/alpaca_eval/instructions.json \
        --n-prompts 120 --test 12 --dev 8 --layer 22 --epochs 15 --lr 2e-3 --batch-size 8 --reg-weight 0.1 \
        --variants S --max-new-tokens 16
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from statistics import mean

import torch

from saesteer.data import sample_path
from saesteer.engines import psr
from saesteer.engines.psr import data as psr_data
from saesteer.eval.scorers import distinct_n, sentiment
from saesteer.generation import generate
from saesteer.models import load_model
from saesteer.store import Store

TRAIT = "Answer in a very happy, enthusiastic tone."
OUT = Path(__file__).parent / "results"


def outputs_summary(judge: psr_data.Judge, prompts: list[str], texts: list[str]) -> dict[str, float]:
    return {
        "sentiment": mean(sentiment(t) for t in texts),
        "coherence_proxy": mean(judge(prompts, texts)),
        "distinct2": mean(distinct_n(t) for t in texts),
    }


def run_variant(name: str, layers: list[int], args: argparse.Namespace, data: dict, model, tokenizer) -> dict:
    config = psr.PSRConfig(
        layers=layers,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        reg_weight=args.reg_weight,
        span=args.span,
        sample=not args.greedy,
        seed=args.seed,
    )
    start = time.time()
    result = psr.train_probes(model, tokenizer, data["train"], config, dev=data["dev"])
    fit_s = time.time() - start
    _, constant = psr.probe_metrics(model, tokenizer, result.artifact, data["train"])
    held_out, _ = psr.probe_metrics(model, tokenizer, result.artifact, data["test"], constant=constant)
    target = psr.prompt_coherence(data["dev"], data["judge"])
    calibration = psr.calibrate(
        model,
        tokenizer,
        result.artifact,
        [t.prompt for t in data["dev"]],
        target=target,
        judge=data["judge"],
        steps=args.search_steps,
        max_new_tokens=args.max_new_tokens,
    )
    artifact = calibration.artifact
    with tempfile.TemporaryDirectory() as tmp:  # the stored artifact is what gets applied
        store = Store(tmp)
        store.save(name, artifact)
        loaded = store.load(name, model)
        prompts = [t.prompt for t in data["test"]]
        texts = generate(
            model, tokenizer, prompts, steering=loaded, alpha=1.0, max_new_tokens=args.max_new_tokens, batch_size=8
        )
    return {
        "layers": layers,
        "fit_seconds": fit_s,
        "history": result.history,
        "dev_metrics": {k: v for k, v in result.artifact.metrics.items() if "_l" not in k},
        "held_out": {k: v for k, v in held_out.items() if "_l" not in k or len(layers) == 1},
        "alpha": artifact.alpha,
        "calibration": {"target": target, "history": calibration.history, "reached": calibration.reached},
        "steered": outputs_summary(data["judge"], prompts, texts),
        "examples": texts[:3],
    }


def markdown(report: dict) -> str:
    a = report["args"]
    lines = [
        "# PSR probe on SmolLM2-135M-Instruct (CPU)",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"Trait instruction: *{TRAIT}* Base prompts: {report['prompts']}; {report['n_train']} train, "
        f"{report['n_dev']} dev (loss normalisation + alpha search), {report['n_test']} held-out test. "
        f"{'Greedy' if a.get('greedy') else 'Sampled (T = 1, seeded)'} y' under span {a.get('span', 'R')}, "
        f"{a['max_new_tokens']} new tokens, no judge filter; AdamW lr {a['lr']}, {a['epochs']} epochs, "
        f"batch {a['batch_size']}, reg weight {a['reg_weight']}, "
        f"seed {a['seed']}. Total {report['seconds']:.0f} s on the 2-core CPU.",
        "",
        "## Does the probe reproduce the prompt-induced difference? (held-out prompts)",
        "",
        "| variant | layers | R² probe | R² constant (train-mean Δ) | cosine | cosine (gate > 0) | zero gate |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in report["variants"].items():
        h = v["held_out"]
        layers = v["layers"] if len(v["layers"]) < 4 else f"{v['layers'][0]}..{v['layers'][-1]}"
        lines.append(
            f"| {name}-PSR | {layers} | {h['r2']:.3f} | {h['const_r2']:.3f} | {h['cosine']:.3f} | "
            f"{h['cosine_active']:.3f} | {h['zero_gate_fraction']:.3f} |"
        )
    lines += [
        "",
        "## Outputs on held-out prompts",
        "",
        "Proxies: VADER sentiment; coherence = mean token log-likelihood under the unsteered model.",
        "",
        "| condition | alpha | VADER sentiment | coherence proxy | distinct-2 |",
        "|---|---|---|---|---|",
    ]
    for label, summary, alpha in [
        ("unsteered", report["unsteered"], "-"),
        ("prompted (x')", report["prompted"], "-"),
        *[(f"{n}-PSR", v["steered"], f"{v['alpha']:.3f}") for n, v in report["variants"].items()],
    ]:
        lines.append(
            f"| {label} | {alpha} | {summary['sentiment']:.3f} | {summary['coherence_proxy']:.3f} | "
            f"{summary['distinct2']:.3f} |"
        )
    lines += ["", "Alpha search (alpha, coherence proxy on dev prompts):", ""]
    for name, v in report["variants"].items():
        c = v["calibration"]
        steps = ", ".join(f"({x:.2f}, {y:.2f})" for x, y in c["history"])
        lines.append(f"- {name}-PSR: target {c['target']:.3f}, reached {c['reached']}: {steps}")
    lines += ["", "Training loss (normalised MSE; dev) by epoch:", ""]
    for name, v in report["variants"].items():
        lines.append(f"- {name}-PSR: " + ", ".join(f"{row.get('dev_loss', float('nan')):.3f}" for row in v["history"]))
    lines += ["", "Examples (held-out, PSR-steered):", ""]
    for name, v in report["variants"].items():
        lines += [f"- {name}-PSR: {t[:160]!r}" for t in v["examples"]]
    lines += ["", "## Reading", "", report["reading"], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--variants", default="S", help="S, A or S,A")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--reg-weight", type=float, default=0.1, help="max(0, 1 - sum lambda); paper: 0.1 (persona)")
    parser.add_argument("--test", type=int, default=10)
    parser.add_argument("--dev", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--search-steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--span", choices=["QR", "R"], default="QR", help="QR: persona (paper); R: AxBench/IFEval")
    parser.add_argument("--greedy", action="store_true", help="greedy y' (the paper samples at temperature 1)")
    parser.add_argument("--prompts", default=None, help="base prompts file (default: the 40 shipped AxBench ones)")
    parser.add_argument("--n-prompts", type=int, default=None, help="use the first N base prompts")
    parser.add_argument("--tag", default="", help="write psr_probe_<tag>.{json,md} (keeps earlier runs)")
    parser.add_argument("--reading", default="(filled in after the run)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    start = time.time()
    model, tokenizer = load_model("smollm2-135m-instruct")
    source = Path(args.prompts) if args.prompts else sample_path("axbench/instructions.jsonl")
    prompts = psr_data.load_prompts(source, limit=args.n_prompts)
    mode = "greedy" if args.greedy else f"sampled{args.seed}"
    key = f"{source.stem}_{len(prompts)}_{args.max_new_tokens}_{args.span}_{mode}"
    cache = Path(tempfile.gettempdir()) / f"psr_probe_triplets_{key}.json"
    if cache.exists():  # greedy or seeded answers are deterministic; reuse them across runs
        triplets = [
            psr_data.Triplet(**{**row, "response_ids": tuple(row["response_ids"])})
            for row in json.loads(cache.read_text())
        ]
    else:
        triplets = psr_data.build_triplets(
            model,
            tokenizer,
            prompts,
            TRAIT,
            max_new_tokens=args.max_new_tokens,
            sample=not args.greedy,
            seed=args.seed,
            span=args.span,
        )
        cache.write_text(json.dumps([asdict(t) for t in triplets]))
    test = [t for t in triplets if t.prompt in set(prompts[-args.test :])]
    rest = [t for t in triplets if t not in test]
    data = {
        "train": rest[args.dev :],
        "dev": rest[: args.dev],
        "test": test,
        "judge": psr.perplexity_judge(model, tokenizer),
    }
    test_prompts = [t.prompt for t in test]
    unsteered = generate(model, tokenizer, test_prompts, max_new_tokens=args.max_new_tokens)
    report: dict = {
        "command": ".venv/bin/python benchmarks/psr_probe.py " + " ".join(sys.argv[1:]),
        "args": vars(args),
        "prompts": f"the first {len(prompts)} of {source.name}",
        "n_train": len(data["train"]),
        "n_dev": len(data["dev"]),
        "n_test": len(test),
        "unsteered": outputs_summary(data["judge"], test_prompts, unsteered),
        "prompted": outputs_summary(data["judge"], test_prompts, [t.response for t in test]),
        "variants": {},
    }
    for variant in args.variants.split(","):
        layers = [args.layer] if variant == "S" else list(range(model.config.num_hidden_layers))
        report["variants"][variant] = run_variant(variant, layers, args, data, model, tokenizer)
    report["seconds"] = time.time() - start
    report["reading"] = args.reading
    OUT.mkdir(exist_ok=True)
    stem = f"psr_probe_{args.tag}" if args.tag else "psr_probe"
    (OUT / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (OUT / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()

"""CAA's A/B protocol on the bundled model: p(matching) on held-out A/B items across multipliers.

Vectors are fitted on the shipped generate subsets (64 items) and evaluated on the full 50-item
held-out test sets; layers and multipliers are fixed in advance (not tuned on the test set).
Writes benchmarks/results/caa_ab.{json,md}.

    .venv/bin/python benchmarks/caa_ab_report.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from saesteer.data import sample_path
from saesteer.engines import caa
from saesteer.eval.ab import evaluate_ab
from saesteer.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--behaviours", default="sycophancy,refusal")
    parser.add_argument("--layers", default="10,15")
    parser.add_argument("--multipliers", default="-8,-4,-2,-1,0,1,2,4,8")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "caa_ab"))
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    layers = [int(x) for x in args.layers.split(",")]
    multipliers = [float(x) for x in args.multipliers.split(",")]
    rows = []
    for behaviour in args.behaviours.split(","):
        vectors = caa.fit_layers(model, tokenizer, sample_path(f"caa/{behaviour}_generate.json"), layers=layers)
        for layer in layers:
            start = time.perf_counter()
            result = evaluate_ab(
                model, tokenizer, sample_path(f"caa/{behaviour}_test_ab.json"), vectors[layer], multipliers=multipliers
            )
            rows.append(
                {
                    "behaviour": behaviour,
                    "layer": layer,
                    "vector_norm": vectors[layer].norm,
                    "pair_agreement": vectors[layer].metrics["pair_agreement"],
                    "p_matching": result.p_matching,
                    "matching_rate": result.matching_rate,
                    "seconds": time.perf_counter() - start,
                }
            )
            print(behaviour, layer, {m: round(p, 3) for m, p in result.p_matching.items()}, flush=True)
    command = "python benchmarks/caa_ab_report.py " + " ".join(sys.argv[1:])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "model": args.model, "rows": rows}, indent=2))
    header = " | ".join(f"x{m:+g}" for m in multipliers)
    lines = [
        f"# CAA A/B protocol on {args.model}",
        "",
        f"Command: `{command}`. Mean normalised p(matching) = p(match)/(p(A)+p(B)) at the answer position "
        "over the 50 held-out test items; vector from 64 generate items (shipped subset); steering at every "
        "position after the instruction (CAA).",
        "",
        f"| behaviour | layer | pair agreement | {header} |",
        "|---|---:|---:|" + "---:|" * len(multipliers),
    ]
    for row in rows:
        cells = " | ".join(f"{row['p_matching'][m]:.3f}" for m in multipliers)
        lines.append(f"| {row['behaviour']} | {row['layer']} | {row['pair_agreement']:.2f} | {cells} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

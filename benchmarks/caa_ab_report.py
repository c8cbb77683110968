"""CAA's A/B protocol on the bundled model: p(matching) on held-out A/B items across multipliers.

Vectors are fitted on the shipped generate subsets (64 items; ``--data-dir`` reads CAA's full upstream
``datasets/`` folder instead) and, as in CAA's ``normalize_vectors.py``, rescaled at each layer to the mean
norm of all the behaviours' vectors at that layer; then evaluated on the full 50-item held-out test sets,
steering from the end of the instruction on (CAA's ``from_pos``: the chat template's generation prompt's
last token). Layers and multipliers are fixed in advance (not tuned on the test set).
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
from saesteer.eval.ab import evaluate_ab, normalise_across_behaviours
from saesteer.models import load_model


def _paths(behaviour: str, data_dir: str | None) -> tuple[Path, Path]:
    """(generate, A/B test) files of a behaviour: the shipped subsets, or CAA's upstream layout."""
    if data_dir is None:
        return sample_path(f"caa/{behaviour}_generate.json"), sample_path(f"caa/{behaviour}_test_ab.json")
    root = Path(data_dir)
    return root / "generate" / behaviour / "generate_dataset.json", root / "test" / behaviour / "test_dataset_ab.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--behaviours", default="sycophancy,refusal")
    parser.add_argument("--data-dir", default=None, help="CAA's datasets/ folder (generate/<b>/, test/<b>/)")
    parser.add_argument("--layers", default="10,15")
    parser.add_argument("--multipliers", default="-8,-4,-2,-1,0,1,2,4,8")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "caa_ab"))
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    layers = [int(x) for x in args.layers.split(",")]
    multipliers = [float(x) for x in args.multipliers.split(",")]
    behaviours = args.behaviours.split(",")
    fitted = {b: caa.fit_layers(model, tokenizer, _paths(b, args.data_dir)[0], layers=layers) for b in behaviours}
    vectors = normalise_across_behaviours(fitted)
    rows = []
    for behaviour in behaviours:
        for layer in layers:
            start = time.perf_counter()
            vector = vectors[behaviour][layer]
            test = _paths(behaviour, args.data_dir)[1]
            result = evaluate_ab(model, tokenizer, test, vector, multipliers=multipliers)
            rows.append(
                {
                    "behaviour": behaviour,
                    "layer": layer,
                    "raw_norm": vector.metrics["raw_norm"],
                    "vector_norm": vector.norm,
                    "pair_agreement": vector.metrics["pair_agreement"],
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
        "over the held-out A/B test items; vectors from the generate items, rescaled per layer to the mean norm "
        f"across the behaviours {', '.join(behaviours)} (CAA's normalize_vectors.py; the paper's set is its 7 "
        "behaviours); steering from the generation prompt's last token on (CAA's from_pos).",
        "",
        f"| behaviour | layer | raw norm | norm | pair agreement | {header} |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(multipliers),
    ]
    for row in rows:
        cells = " | ".join(f"{row['p_matching'][m]:.3f}" for m in multipliers)
        lines.append(
            f"| {row['behaviour']} | {row['layer']} | {row['raw_norm']:.2f} | {row['vector_norm']:.2f} | "
            f"{row['pair_agreement']:.2f} | {cells} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

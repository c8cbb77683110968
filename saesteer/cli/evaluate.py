"""``saesteer eval ab``: CAA's A/B protocol across multipliers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from saesteer.cli.common import console, float_list

EXAMPLE = """example:
  saesteer eval ab --model smollm2-135m-instruct --store runs/store --vector refusal-l15 \\
      --data refusal_test_ab.json --multipliers=-4,-2,0,2,4 --out runs/refusal_ab.json"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser("eval", help="evaluate a stored vector")
    kinds = ev.add_subparsers(dest="protocol", required=True)
    ab = kinds.add_parser(
        "ab",
        help="p(matching answer) on A/B items across multipliers",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ab.add_argument("--model", required=True)
    ab.add_argument("--store", required=True)
    ab.add_argument("--vector", required=True)
    ab.add_argument("--data", required=True, help="A/B test items (.json/.jsonl)")
    ab.add_argument("--multipliers", type=float_list, default=[-2.0, -1.0, 0.0, 1.0, 2.0])
    ab.add_argument("--out", help="write per-item records and means as JSON")
    ab.set_defaults(run=run_ab)


def run_ab(args: argparse.Namespace) -> None:
    from rich.table import Table

    from saesteer.eval.ab import evaluate_ab
    from saesteer.models import load_model
    from saesteer.store import Store

    vector = Store(args.store).load_vector(args.vector)
    model, tokenizer = load_model(args.model)
    result = evaluate_ab(model, tokenizer, args.data, vector, multipliers=args.multipliers)
    table = Table(title=f"A/B: {args.vector} on {args.data}")
    for column in ("multiplier", "p(matching)", "matching rate"):
        table.add_column(column, justify="right")
    for m in result.multipliers:
        table.add_row(f"{m:+g}", f"{result.p_matching[m]:.3f}", f"{result.matching_rate[m]:.2f}")
    console.print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            json.dumps(
                {"p_matching": result.p_matching, "matching_rate": result.matching_rate, "records": result.records},
                indent=1,
            )
        )

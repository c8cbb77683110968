"""``saesteer eval ab`` (CAA's A/B protocol across multipliers) and ``saesteer eval task`` (a task's reward,
unsteered vs steered, with SER), for any stored steering artifact."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from saesteer.cli.common import (
    add_backend_flag,
    add_end_marker_flag,
    apply_end_marker,
    check_fits,
    console,
    float_list,
)

EXAMPLE = """example:
  saesteer eval ab --model smollm2-135m-instruct --store runs/store --vector refusal-l15 \\
      --data refusal_test_ab.json --multipliers=-4,-2,0,2,4 --out runs/refusal_ab.json"""


def _protocol(kinds: argparse._SubParsersAction, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A protocol subcommand with the options every one needs: the model, the store and the artifact."""
    parser = kinds.add_parser(name, help=summary, epilog=example, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument(
        "--vector", required=True, help="any stored steering artifact (CAA, CorrSteer, PrOSV, PSR, imported vector)"
    )
    add_backend_flag(parser, note=" (eval ab: hf only)")
    add_end_marker_flag(parser)
    return parser


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser("eval", help="evaluate a stored steering artifact")
    kinds = ev.add_subparsers(dest="protocol", required=True)
    ab = _protocol(kinds, "ab", "p(matching answer) on A/B items across multipliers", EXAMPLE)
    ab.add_argument("--data", required=True, help="A/B test items (.json/.jsonl)")
    ab.add_argument("--multipliers", type=float_list, default=[-2.0, -1.0, 0.0, 1.0, 2.0])
    ab.add_argument("--out", help="write per-item records and means as JSON")
    ab.set_defaults(run=run_ab)
    task = _protocol(kinds, "task", "reward on a task's split, unsteered vs steered, with SER", TASK_EXAMPLE)
    task.add_argument("--task", required=True)
    task.add_argument("--data", default=None)
    task.add_argument("--split", choices=["train", "val", "test"], default="test")
    task.add_argument("--limit", type=int, default=None)
    task.add_argument("--alpha", type=float, default=1.0, help="strength (CorrSteer's s)")
    task.add_argument("--batch-size", type=int, default=8)
    task.add_argument("--out", help="write per-sample records and the summary as JSON")
    task.set_defaults(run=run_task)


TASK_EXAMPLE = """example:
  saesteer eval task --model smollm2-135m-instruct --store runs/store --vector capitals-A --task capitals
  saesteer eval task --model smollm2-135m-instruct --store runs/store --vector capitals-A --task capitals \
      --backend vllm     # the same records (greedy: the same outputs) from a vLLM engine"""


def run_task(args: argparse.Namespace) -> None:
    from saesteer.backends import load
    from saesteer.eval.ser import side_effect_ratio
    from saesteer.store import Store
    from saesteer.tasks import get_task, mean_reward
    from saesteer.tasks import run_task as score_task

    store = Store(args.store)
    task = get_task(args.task, args.data)
    samples = task.samples(args.split)[: args.limit]
    artifact = store.load(args.vector)  # a missing name or damaged blob fails before the model loads
    model, tokenizer = load(args.model, backend=args.backend)
    apply_end_marker(model, tokenizer, args.end_marker)
    check_fits(artifact, model, args.vector)
    options = {"batch_size": args.batch_size, "templated": task.chat}
    plain = score_task(model, tokenizer, task, samples, **options)
    interventions = artifact.interventions(alpha=args.alpha) or None  # CorrSteer-P may keep no layer
    steered = score_task(model, tokenizer, task, samples, steering=interventions, **options)
    summary = {
        "task": task.name,
        "backend": args.backend,
        "split": args.split,
        "n": len(samples),
        "reward": task.reward_name,
        "unsteered": mean_reward(plain),
        "steered": mean_reward(steered),
        "ser": side_effect_ratio(
            {r.sample.id: (r.generation, r.reward) for r in plain},
            {r.sample.id: (r.generation, r.reward) for r in steered},
        ),
        "changed": sum(a.generation != b.generation for a, b in zip(plain, steered, strict=True)),
    }
    ser = "n/a (no output changed)" if summary["ser"] is None else f"{summary['ser']:.2f}"
    console.print(
        f"{task.name} {args.split} (n={summary['n']}, {task.reward_name}, {args.backend}): "
        f"unsteered {summary['unsteered']:.3f}, "
        f"steered {summary['steered']:.3f}, SER {ser}, {summary['changed']} outputs changed"
    )
    if args.out:
        records = [
            {
                "id": a.sample.id,
                "unsteered": a.generation,
                "steered": b.generation,
                "reward_unsteered": a.reward,
                "reward_steered": b.reward,
            }
            for a, b in zip(plain, steered, strict=True)
        ]
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({**summary, "records": records}, indent=1))


def run_ab(args: argparse.Namespace) -> None:
    from rich.table import Table

    from saesteer.errors import ConfigError
    from saesteer.eval.ab import evaluate_ab
    from saesteer.models import load_model
    from saesteer.store import Store

    if args.backend != "hf":
        raise ConfigError(
            "eval ab reads each answer letter's probability from the HF model's logits, reusing one KV cache "
            "across multipliers: it runs on the hf backend only. Fix: drop --backend vllm."
        )
    model, tokenizer = load_model(args.model)
    apply_end_marker(model, tokenizer, args.end_marker)
    artifact = Store(args.store).load(args.vector, model)
    result = evaluate_ab(model, tokenizer, args.data, artifact, multipliers=args.multipliers)
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

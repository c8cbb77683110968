"""``saesteer bench`` (run a benchmark recipe) and ``saesteer leaderboard`` (merge result directories)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from saesteer.cli.common import add_backend_flag, console
from saesteer.cli.steps import run_train_steps
from saesteer.errors import ConfigError

BENCH_EXAMPLE = """example:
  saesteer bench --recipe recipes/bench-smollm2-mmlu.yaml
  accelerate launch --num_processes 2 -m saesteer bench --recipe recipes/bench-smollm2-mmlu.yaml
  saesteer bench --recipe recipes/bench-smollm2-mmlu.yaml --backend vllm --out runs/bench-vllm

writes records.jsonl (per sample), leaderboard.json/.md and plots into the recipe's 'out' directory;
rerunning the same command resumes (finished records are kept). --backend (or 'backend:' in the recipe)
picks what generates: hf (transformers) or vllm (a vLLM engine, one process; train steps, fitting on a
task's pairs and the proxy judge still run on the HF model, before and beside the engine). Records and
leaderboards name their backend; on a small CPU machine run vllm with VLLM_CPU_KVCACHE_SPACE=1 (GiB)."""

LEADERBOARD_EXAMPLE = """example:
  saesteer leaderboard runs/bench-smollm2 runs/bench-gemma3 --out runs/leaderboard.md"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="run a benchmark recipe (methods x tasks x factors) and write a leaderboard",
        epilog=BENCH_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("--recipe", required=True, help="a YAML recipe with job: bench")
    bench.add_argument("--out", default=None, help="override the recipe's results directory")
    bench.add_argument("--no-train", action="store_true", help="skip the recipe's train steps")
    add_backend_flag(bench, default=None, note="; default: the recipe's 'backend' (hf)")
    bench.set_defaults(run=run_bench_command)
    board = subparsers.add_parser(
        "leaderboard",
        help="print (and write) one table from several benchmark result directories",
        epilog=LEADERBOARD_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    board.add_argument("dirs", nargs="+", help="result directories (or leaderboard.json files)")
    board.add_argument("--out", default=None, help="write the merged table as Markdown (and .json beside it)")
    board.set_defaults(run=run_leaderboard)


def run_bench_command(args: argparse.Namespace) -> None:
    from saesteer.recipes import BenchRecipe, load_recipe

    recipe = load_recipe(args.recipe)
    if not isinstance(recipe, BenchRecipe):
        raise ConfigError(f"{args.recipe} is not a benchmark recipe. Fix: use 'saesteer run' for job {recipe.job!r}.")  # type: ignore[attr-defined]
    if args.out:
        recipe = recipe.model_copy(update={"out": args.out})
    if args.backend:
        recipe = recipe.model_copy(update={"backend": args.backend})
    run_bench_recipe(recipe, train=not args.no_train)


def run_bench_recipe(recipe: Any, *, train: bool = True) -> None:
    """Train steps on HF (skipping artifacts already stored), then the benchmark on the recipe's backend,
    then the table on screen."""
    from saesteer.bench import run_bench
    from saesteer.distributed import world

    if recipe.backend == "vllm":  # fail before any training when vLLM is missing
        from saesteer.backends.vllm.engine import import_vllm

        import_vllm()
    if train and recipe.train:
        run_train_steps(recipe)
    result = run_bench(recipe)
    if world().is_main:
        _print_rows(result.rows, title=f"leaderboard on {recipe.backend} (full columns: leaderboard.md)")
        console.print(f"results in {result.out} (records.jsonl, leaderboard.json, leaderboard.md, plots)")


def _print_rows(rows: list[Any], title: str = "leaderboard (full columns: leaderboard.md)") -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in ("task", "metric", "method", "backend", "layers", "factor", "score [95% CI]", "SER", "n"):
        table.add_column(column)
    for row in sorted(rows, key=lambda r: (r.task, r.metric, -r.score)):
        ser = "-" if row.ser is None else f"{row.ser:.2f}"
        interval = f"{row.score:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"
        cells = (row.task, row.metric, row.method, row.backend, row.layers, row.factor, interval, ser, str(row.n))
        table.add_row(*cells)
    console.print(table)


def run_leaderboard(args: argparse.Namespace) -> None:
    import json
    from dataclasses import asdict

    from saesteer.bench.report import markdown, merge

    rows = merge(args.dirs)
    _print_rows(rows)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown(rows, title="Merged leaderboard"), encoding="utf-8")
        out.with_suffix(".json").write_text(json.dumps({"rows": [asdict(r) for r in rows]}, indent=1))
        console.print(f"wrote {out} and {out.with_suffix('.json')}")

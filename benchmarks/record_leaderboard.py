"""Run a benchmark recipe (resuming if its results directory exists) and record its leaderboard, plots
and the command under benchmarks/results/leaderboards/<name>/.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/record_leaderboard.py recipes/bench-smollm2-axbench.yaml

``--backend vllm`` (run with the vLLM environment's python) generates on vLLM instead of the recipe's backend;
training steps still run on HF. The leaderboard's backend column says which generated each row.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))


def main() -> None:
    from saesteer.cli.bench import run_bench_recipe
    from saesteer.recipes import BenchRecipe, load_recipe

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results" / "leaderboards"))
    parser.add_argument("--backend", choices=["hf", "vllm"], default=None, help="override the recipe's backend")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    if not isinstance(recipe, BenchRecipe):
        raise SystemExit(f"{args.recipe} is not a benchmark recipe")
    if args.backend is not None:
        recipe = recipe.model_copy(update={"backend": args.backend})
    flag = "" if args.backend is None else f" --backend {args.backend}"
    command = f"saesteer run {args.recipe}" if not flag else f"saesteer bench --recipe {args.recipe}{flag}"
    start = time.perf_counter()
    run_bench_recipe(recipe)
    minutes = (time.perf_counter() - start) / 60
    out, target = Path(recipe.out), Path(args.results) / recipe.name
    target.mkdir(parents=True, exist_ok=True)
    for path in [out / "leaderboard.json", *out.glob("*.png")]:
        shutil.copy2(path, target / path.name)
    board = (out / "leaderboard.md").read_text(encoding="utf-8")
    header = (
        f"Command: `{command}` (recorded by `python benchmarks/record_leaderboard.py "
        f"{args.recipe}{flag}`; "
        f"this call {minutes:.1f} min, resumed runs count only the remaining work). Per-sample records stay in "
        f"`{recipe.out}/records.jsonl`.\n\n"
    )
    (target / "leaderboard.md").write_text(board.replace("\n\n", "\n\n" + header, 1), encoding="utf-8")
    print(f"recorded {target}")


if __name__ == "__main__":
    main()

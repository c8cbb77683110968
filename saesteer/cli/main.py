"""Entry point: ``saesteer <command> ...`` (also ``python -m saesteer``)."""

from __future__ import annotations

import argparse
import sys

from rich.markup import escape

from saesteer.cli import analyze, bench, evaluate, features, generate, sae, serve, store, train, vector
from saesteer.cli.common import console
from saesteer.errors import SaesteerError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saesteer",
        description="Steer language models through SAE features and contrastive vectors.",
        epilog="start here: saesteer quickstart   (fits, stores and compares a sentiment vector)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    quick = commands.add_parser("quickstart", help="the main job on embedded defaults (bundled model and data)")
    quick.add_argument("--out", default="runs/quickstart", help="output directory (store, results, plot)")
    quick.add_argument("--model", default=None, help="model (default: smollm2-135m-instruct)")
    quick.add_argument("--layer", type=int, default=8)
    quick.set_defaults(run=_run_quickstart)
    train.add_parser(commands)
    generate.add_parser(commands)
    evaluate.add_parser(commands)
    store.add_parser(commands)
    sae.add_parser(commands)
    vector.add_parser(commands)
    analyze.add_parser(commands)
    features.add_parser(commands)
    bench.add_parser(commands)
    serve.add_parser(commands)
    run = commands.add_parser("run", help="run a recipe (recipes/*.yaml)")
    run.add_argument("recipe")
    run.set_defaults(run=_run_recipe)
    return parser


def _run_quickstart(args: argparse.Namespace) -> None:
    from saesteer.models.bundled import DEFAULT_MODEL
    from saesteer.quickstart import run_quickstart

    run_quickstart(args.out, model_name=args.model or DEFAULT_MODEL, layer=args.layer)


def _run_recipe(args: argparse.Namespace) -> None:
    from saesteer.models import load_model
    from saesteer.recipes import BenchRecipe, SAETrainRecipe, load_recipe
    from saesteer.store import Store

    recipe = load_recipe(args.recipe)
    if isinstance(recipe, BenchRecipe):
        bench.run_bench_recipe(recipe)
    elif isinstance(recipe, SAETrainRecipe):
        store = Store(recipe.store)
        model, tokenizer = load_model(recipe.model)
        sae.train_and_store(model, tokenizer, recipe.train_config(), store, recipe.name)


def main(argv: list[str] | None = None) -> int:
    """Run one command; saesteer errors end as one ``error: ... Fix: ...`` line (exit 2), Ctrl-C as 130."""
    try:
        args = build_parser().parse_args(argv)
        args.run(args)
    except SaesteerError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted:[/] hooks removed; records already in the store are complete")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``saesteer train corrsteer`` and ``saesteer features top``."""

from __future__ import annotations

import argparse

from saesteer.cli.common import console

EXAMPLE = """example:
  saesteer sae train --model smollm2-135m-instruct --layer 8 --store runs/store
  saesteer train corrsteer --model smollm2-135m-instruct --task capitals --layers all \\
      --store runs/store --name capitals-A --variant A
  saesteer train corrsteer --model M --task mmlu --data mmlu.jsonl --layers 8,12 --store runs/store --name mmlu-P \\
      --variant P --samples 4000
  saesteer features top --store runs/store --name capitals-A

tasks: capitals, sentiment (shipped), mmlu and harmbench (--data PATH), or NAME --data qa.jsonl
({question, answer} rows). --layers all uses every layer that has an SAE in the store."""


def add_train_parser(methods: argparse._SubParsersAction) -> None:
    cs = methods.add_parser(
        "corrsteer",
        help="CorrSteer: correlated SAE features, generation-time steering",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cs.add_argument("--model", required=True)
    cs.add_argument("--task", required=True)
    cs.add_argument("--data", default=None, help="task data file (mmlu, harmbench, your own QA jsonl)")
    cs.add_argument("--layers", default="all", help="'all' (every layer with an SAE in the store) or L1,L2,...")
    cs.add_argument("--store", required=True)
    cs.add_argument("--name", required=True)
    cs.add_argument("--pool", choices=["max", "mean"], default="max")
    cs.add_argument("--variant", choices=["S", "A", "P"], default="A")
    cs.add_argument("--samples", type=int, default=None, help="train samples to harvest (default: all)")
    cs.add_argument("--batch-size", type=int, default=8)
    cs.set_defaults(run=run_train)


def add_features_parser(subparsers: argparse._SubParsersAction) -> None:
    features = subparsers.add_parser("features", help="inspect CorrSteer's selected features")
    actions = features.add_subparsers(dest="action", required=True)
    top = actions.add_parser("top", help="ranked features per layer with r, coefficient and examples")
    top.add_argument("--store", required=True)
    top.add_argument("--name", required=True)
    top.add_argument("--k", type=int, default=5)
    top.set_defaults(run=run_top)


def run_train(args: argparse.Namespace) -> None:
    from saesteer.engines import corrsteer
    from saesteer.errors import StoreError
    from saesteer.models import load_model
    from saesteer.store import Store
    from saesteer.tasks import get_task

    store = Store(args.store)
    task = get_task(args.task, args.data)
    if args.layers == "all":
        layers = sorted({r.layer for r in store.find(kind="sae", model_id=args.model) if r.layer is not None})
        if not layers:
            raise StoreError(
                f"No SAE for {args.model} in {args.store}. Fix: saesteer sae train --model {args.model} ..."
            )
    else:
        layers = [int(x) for x in args.layers.split(",")]
    saes = {layer: store.load_sae(store.find_sae(args.model, layer).name) for layer in layers}
    model, tokenizer = load_model(args.model)
    from saesteer.distributed import world

    result = corrsteer.fit(
        model,
        tokenizer,
        task,
        saes,
        variant=args.variant,
        pool=args.pool,
        samples=args.samples,
        batch_size=args.batch_size,
    )
    if not world().is_main:
        return  # every rank holds the same reduced result; only rank 0 writes
    record = corrsteer.save(store, args.name, result, task=task.name, pool=args.pool)
    stats = result.harvest.stats
    console.print(f"harvested {stats.n} samples ({task.reward_name}: {stats.n_pos / stats.n:.2f})")
    for f in result.artifact.features:
        console.print(f"  layer {f.layer} feature {f.feature}: r = {f.r:+.3f}, coefficient = {f.coefficient:.3f}")
    if result.validation:
        console.print(f"  validation: {result.validation}")
    console.print(f"stored [bold]{args.name}[/] ({record.id[:8]}) and {args.name}-stats")


def run_top(args: argparse.Namespace) -> None:
    from rich.table import Table

    from saesteer.store import Store

    store = Store(args.store)
    record = store.get(args.name, kind="vector")
    stats = store.load_feature_stats(f"{args.name}-stats")
    coefficients = stats.coefficients() if stats.n_pos else None
    selected = {(f["layer"], f["feature"]) for f in record.config.get("features", [])}
    table = Table(title=f"{args.name}: task {record.config.get('task')}, n = {stats.n}", show_lines=True)
    for column in ("layer", "feature", "r", "coefficient", "selected", "top generations (pooled activation)"):
        table.add_column(column)
    for layer_key, ranked in record.config.get("ranked", {}).items():
        layer = int(layer_key)
        row = stats.layers.index(layer)
        for feature, r in ranked[: args.k]:
            coefficient = "n/a" if coefficients is None else f"{float(coefficients[row, feature]):.3f}"
            examples = record.config.get("examples", {}).get(f"{layer}/{feature}", [])
            snippet = "\n".join(f"{value:.1f}: {text[:60]!r}" for value, text, _ in examples)
            table.add_row(
                str(layer),
                str(feature),
                f"{r:+.3f}",
                coefficient,
                "yes" if (layer, feature) in selected else "",
                snippet,
            )
    console.print(table)

"""``saesteer features top``: CorrSteer's ranked and selected features, per layer, with examples."""

from __future__ import annotations

import argparse

from saesteer.cli.common import console


def add_features_parser(subparsers: argparse._SubParsersAction) -> None:
    features = subparsers.add_parser("features", help="inspect CorrSteer's selected features")
    actions = features.add_subparsers(dest="action", required=True)
    top = actions.add_parser("top", help="ranked features per layer with r, coefficient and examples")
    top.add_argument("--store", required=True)
    top.add_argument("--name", required=True, help="a stored CorrSteer artifact (saesteer train corrsteer)")
    top.add_argument("--k", type=int, default=5)
    top.set_defaults(run=run_top)


def run_top(args: argparse.Namespace) -> None:
    from rich.table import Table

    from saesteer.errors import ConfigError, StoreError
    from saesteer.store import Store

    store = Store(args.store)
    record = store.get(args.name, kind="vector")
    if record.method != "corrsteer":
        raise ConfigError(
            f"{args.name!r} is a {record.method} artifact; features top reads CorrSteer artifacts. "
            "Fix: pass the name of a 'saesteer train corrsteer' record (saesteer store ls)."
        )
    stats = store.load_feature_stats(f"{args.name}-stats")
    coefficients = stats.coefficients() if stats.n_pos else None
    selected = {(f["layer"], f["feature"]) for f in record.config.get("features", [])}
    table = Table(title=f"{args.name}: task {record.config.get('task')}, n = {stats.n}", show_lines=True)
    for column in ("layer", "feature", "r", "coefficient", "selected", "top generations (pooled activation)"):
        table.add_column(column)
    for layer_key, ranked in record.config.get("ranked", {}).items():
        layer = int(layer_key)
        if layer not in stats.layers:
            raise StoreError(
                f"{args.name}-stats holds layers {list(stats.layers)}, not layer {layer} of {args.name!r}. "
                f"Fix: refit it (saesteer train corrsteer ... --name {args.name})."
            )
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

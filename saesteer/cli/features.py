"""``saesteer features search|dash|top``: SAE latents on a text or a concept, dashboards, CorrSteer's features."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from saesteer.cli.common import console, int_list

EXAMPLE = """examples:
  saesteer features search --store runs/store --sae sae-l8 "def main(argv):"
  saesteer features search --store runs/store --sae sae-l8 --concept 2          # AxBench concept id
  saesteer features search --store runs/store --sae sae-l8 --concept "rental services"
  saesteer features dash --store runs/store --sae sae-l8 --top 50 --corpus python-docs --out runs/dash

corpus: python-docs / python-docs-chat (offline SAE training corpora), axbench (the shipped concept
texts), or a .txt/.jsonl file or folder (--text-field). Corpus statistics are cached in the store."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    features = subparsers.add_parser(
        "features", help="find, inspect and chart SAE latents", epilog=EXAMPLE, formatter_class=fmt
    )
    actions = features.add_subparsers(dest="action", required=True)
    search = actions.add_parser(
        "search", help="latents on a text (per token) or for a concept", epilog=EXAMPLE, formatter_class=fmt
    )
    _common(search)
    search.add_argument("text", nargs="?", help="text whose tokens' top latents are listed")
    search.add_argument("--concept", help="AxBench concept id or (part of) its description")
    search.add_argument("--data", type=Path, help="AxBench-style .jsonl (default: the shipped sample)")
    search.add_argument("--top", type=int, default=5, help="latents per token / ranked latents")
    search.set_defaults(run=run_search)
    dash = actions.add_parser("dash", help="static HTML dashboards + PNGs", epilog=EXAMPLE, formatter_class=fmt)
    _common(dash)
    picked = dash.add_mutually_exclusive_group()
    picked.add_argument("--features", type=int_list, help="latents to show, e.g. 1,2,3")
    picked.add_argument("--top", type=int, default=32, help="show the N latents with the highest max activation")
    dash.add_argument("--corpus", default="python-docs")
    dash.add_argument("--text-field", default="text", help="field of .jsonl corpora")
    dash.add_argument("--tokens", type=int, default=8192)
    dash.add_argument("--context", type=int, default=64, help="tokens per window")
    dash.add_argument("--contexts", type=int, default=8, help="top contexts kept per latent")
    dash.add_argument("--batch-size", type=int, default=8)
    dash.add_argument("--out", required=True, type=Path)
    dash.set_defaults(run=run_dash)
    top = actions.add_parser("top", help="CorrSteer's ranked features per layer with r, coefficient and examples")
    top.add_argument("--store", required=True)
    top.add_argument("--name", required=True, help="a stored CorrSteer artifact (saesteer train corrsteer)")
    top.add_argument("--k", type=int, default=5)
    top.set_defaults(run=run_top)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True)
    parser.add_argument("--sae", required=True, help="an SAE record (saesteer store ls)")
    parser.add_argument("--model", default=None, help="model (default: the SAE record's model)")


def _load(args: argparse.Namespace) -> tuple[Any, Any, Any, Any, Any]:
    """(store, SAE record, model, tokenizer, SAE)."""
    from saesteer.models import load_model
    from saesteer.store import Store

    store = Store(args.store)
    record = store.get(args.sae, kind="sae")
    model, tokenizer = load_model(args.model or record.model_id)
    return store, record, model, tokenizer, store.load(args.sae, model, kind="sae")


def run_search(args: argparse.Namespace) -> None:
    from saesteer.errors import ConfigError

    if (args.text is None) == (args.concept is None):
        raise ConfigError('Pass a text or --concept, not both or neither. Fix: features search ... "some text".')
    if args.top < 1:
        raise ConfigError(f"--top must be >= 1, got {args.top}. Fix: pass --top 5.")
    _, record, model, tokenizer, sae = _load(args)
    where = {"layer": int(record.layer or 0), "hook_point": record.hook_point or "resid_post"}
    if args.text is not None:
        _token_table(model, tokenizer, sae, args.text, args.top, where)
    else:
        _concept_table(model, tokenizer, sae, args, where)


def _token_table(model: Any, tokenizer: Any, sae: Any, text: str, top: int, where: dict[str, Any]) -> None:
    from rich.table import Table

    from saesteer.features.search import text_latents

    tokens, latents = text_latents(model, tokenizer, sae, text, **where)
    values, indices = latents.topk(min(top, latents.shape[1]), dim=1)
    table = Table(title=f"top {top} latents per token (layer {where['layer']})")
    for column in ("pos", "token", "latents (activation)"):
        table.add_column(column)
    for position, token in enumerate(tokens):
        fired = [
            f"{int(i)} ({float(v):.2f})" for v, i in zip(values[position], indices[position], strict=True) if v > 0
        ]
        table.add_row(str(position + 1), repr(token), ", ".join(fired) or "-")
    console.print(table)


def _concept_table(model: Any, tokenizer: Any, sae: Any, args: argparse.Namespace, where: dict[str, Any]) -> None:
    from rich.table import Table

    from saesteer.features.search import concept_data, pooled_latents, separation

    data = concept_data(args.concept, args.data)
    positives = pooled_latents(model, tokenizer, sae, data.positives, **where)
    negatives = pooled_latents(model, tokenizer, sae, data.negatives, **where)
    scores = separation(positives, negatives)
    title = f"concept {data.concept_id}: {data.description} ({len(data.positives)} vs {len(data.negatives)} texts)"
    table = Table(title=title)
    for column in ("latent", "AUROC", "mean max-pooled (concept)", "(neutral)", "difference"):
        table.add_column(column)
    for i in scores.ranked(args.top):
        table.add_row(
            str(i),
            f"{float(scores.auroc[i]):.3f}",
            f"{float(scores.mean_pos[i]):.3f}",
            f"{float(scores.mean_neg[i]):.3f}",
            f"{float(scores.difference[i]):+.3f}",
        )
    console.print(table)


def run_dash(args: argparse.Namespace) -> None:
    from saesteer.errors import ConfigError
    from saesteer.features.activations import Settings
    from saesteer.features.cache import cached_summary
    from saesteer.features.dashboard import write_dashboard
    from saesteer.features.logit_lens import final_norm, logit_lens

    store, record, model, tokenizer, sae = _load(args)
    settings = Settings(args.corpus, args.tokens, args.context, args.batch_size, args.contexts, args.text_field)
    summary, cached = cached_summary(store, record, model, tokenizer, sae, settings)
    features = args.features if args.features is not None else summary.most_active(args.top)
    outside = [f for f in features if not 0 <= f < int(sae.cfg.d_sae)]
    if outside or not features:
        raise ConfigError(
            f"Latents {outside or '(none)'} are not of this SAE (d_sae {sae.cfg.d_sae}). Fix: pick 0..d_sae-1."
        )
    meta = {
        "sae": args.sae,
        "model": record.model_id,
        "layer": record.layer,
        "hook point": record.hook_point,
        "corpus": args.corpus,
        "logit lens": f"W_dec through the final norm gain ({final_norm(model)[1] or 'none found'}) then W_U",
    }
    page = write_dashboard(args.out, tokenizer, summary, features, logit_lens(model, tokenizer, sae, features), meta)
    source = "from the store cache" if cached else "computed and cached in the store"
    console.print(f"wrote {page} ({len(features)} latents; corpus statistics {source})")


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

"""The main job on embedded defaults: fit a CAA sentiment vector on the bundled model, store it,
and compare unsteered vs steered generations on held-out prompts with measured scores."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import mean
from typing import Any

from saesteer.data import sample_path
from saesteer.engines import caa
from saesteer.engines.training import train
from saesteer.eval.fluency import perplexity
from saesteer.eval.scorers import distinct_n, sentiment
from saesteer.generation import sweep
from saesteer.models.bundled import DEFAULT_MODEL
from saesteer.models.loading import load_model
from saesteer.plots import plot_sweep
from saesteer.store import Store


@dataclass
class SweepRow:
    """Scores of the generations at one multiplier."""

    alpha: float
    sentiment: float
    distinct_2: float
    perplexity: float
    collapsed: bool


def score_sweep(model: Any, tokenizer: Any, prompts: list[str], grid: dict[float, list[str]]) -> list[SweepRow]:
    """Mean VADER sentiment, distinct-2 and unsteered perplexity per multiplier; flag collapse."""
    rows = []
    for alpha, texts in grid.items():
        ppl = perplexity(model, tokenizer, prompts, texts)
        rows.append(
            SweepRow(alpha, mean(map(sentiment, texts)), mean(map(distinct_n, texts)), mean(ppl), collapsed=False)
        )
    base = next((r for r in rows if r.alpha == 0.0), rows[0])
    for row in rows:  # degenerate text: loops (low distinct-2) or text the plain model finds implausible
        row.collapsed = row.distinct_2 < 0.75 * base.distinct_2 or row.perplexity > 4 * base.perplexity
    return rows


def run_quickstart(
    out_dir: str | Path = "runs/quickstart",
    *,
    model_name: str = DEFAULT_MODEL,
    layer: int = 8,
    alphas: tuple[float, ...] = (-8.0, -4.0, -2.0, 0.0, 2.0, 4.0, 8.0),
    shown: tuple[float, float, float] = (-4.0, 0.0, 4.0),
    max_new_tokens: int = 40,
) -> dict[str, Any]:
    """Run the demo and write store/, results.json, report.md and sentiment_sweep.png into ``out_dir``."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]saesteer quickstart[/]: model [cyan]{model_name}[/], CAA sentiment vector at layer {layer}")
    model, tokenizer = load_model(model_name)
    pairs_path = sample_path("sentiment/pairs.jsonl")
    prompts = list(json.loads(sample_path("sentiment/prompts.json").read_text()))
    store = Store(out / "store")
    config = {"layer": layer, "data": str(pairs_path), "read": "mean"}
    fitted, record = train(caa.METHOD, model, tokenizer, config, store=store, name=f"sentiment-l{layer}")
    vector = fitted.artifact
    console.print(
        f"Fitted on {vector.config['n_pairs']} pairs, |v| = {vector.norm:.2f}; "
        f"stored as {record.name!r} in {store.root}"
    )
    grid = sweep(
        model,
        tokenizer,
        vector,
        prompts,
        alphas,
        max_new_tokens=max_new_tokens,
        batch_size=len(prompts) * 2,
        progress=True,
    )
    rows = score_sweep(model, tokenizer, prompts, grid)
    by_alpha = {r.alpha: r for r in rows}

    table = Table(
        title="Held-out prompts: generations at three multipliers (VADER sentiment in brackets)", show_lines=True
    )
    table.add_column("prompt", style="bold", max_width=22)
    for alpha in shown:
        table.add_column(f"x{alpha:+g}" if alpha else "unsteered (x0)", max_width=44)
    for index, prompt in enumerate(prompts[:4]):
        cells = [f"{grid[a][index][:160]}\n[{sentiment(grid[a][index]):+.2f}]" for a in shown]
        table.add_row(prompt, *cells)
    table.add_row(
        "mean over all 8",
        *[f"sentiment {by_alpha[a].sentiment:+.2f}, distinct-2 {by_alpha[a].distinct_2:.2f}" for a in shown],
    )
    console.print(table)
    summary = Table(title="Multiplier sweep (sentiment: VADER; fluency proxies: distinct-2, unsteered perplexity)")
    for column in ("alpha", "sentiment", "distinct-2", "perplexity", "collapsed"):
        summary.add_column(column, justify="right")
    for r in rows:
        summary.add_row(
            f"{r.alpha:+g}",
            f"{r.sentiment:+.3f}",
            f"{r.distinct_2:.3f}",
            f"{r.perplexity:.1f}",
            "yes" if r.collapsed else "",
        )
    console.print(summary)

    results = {
        "model": model_name,
        "layer": layer,
        "vector": {"name": record.name, "id": record.id, "norm": vector.norm, **vector.metrics},
        "sweep": [asdict(r) for r in rows],
        "generations": {str(a): dict(zip(prompts, texts, strict=True)) for a, texts in grid.items()},
        "scorers": {
            "sentiment": "VADER compound (lexicon heuristic)",
            "fluency": "distinct-2 and perplexity under the unsteered model (proxies)",
        },
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    plot_sweep(rows, out / "sentiment_sweep.png", title=f"CAA sentiment vector, {model_name} layer {layer}")
    (out / "report.md").write_text(_markdown(results))
    console.print(f"Wrote {out / 'results.json'}, {out / 'report.md'} and {out / 'sentiment_sweep.png'}")
    return results


def _markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Quickstart: CAA sentiment vector on {results['model']} (layer {results['layer']})",
        "",
        "| alpha | sentiment (VADER) | distinct-2 | perplexity (unsteered) | collapsed |",
        "|---:|---:|---:|---:|:---:|",
    ]
    for r in results["sweep"]:
        collapsed = "yes" if r["collapsed"] else ""
        lines.append(
            f"| {r['alpha']:+g} | {r['sentiment']:+.3f} | {r['distinct_2']:.3f} | {r['perplexity']:.1f} | {collapsed} |"
        )
    return "\n".join(lines) + "\n"

"""Static feature dashboards: one searchable HTML page per SAE plus one histogram PNG per latent.

The search box filters the latents client-side (feature id as ``#12``, a logit-lens token, or context text);
``index.html?q=...`` opens the page with a search filled in."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from saesteer.features.activations import LOG10_EDGES, FeatureSummary
from saesteer.features.logit_lens import LensTokens

BEFORE, AFTER = 24, 8  # tokens shown either side of a context's most active token

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
.meta{color:#555}.feature{border:1px solid #ccc;border-radius:6px;padding:.8em;margin:1em 0}
.feature h2{margin:.1em 0;font-size:1.15em}.stats{color:#444}.row{display:flex;gap:1.5em;flex-wrap:wrap}
.ctx{font-family:ui-monospace,monospace;font-size:.85em;white-space:pre-wrap;margin:.25em 0;
border-left:3px solid #eee;padding-left:.5em}.ctx .v{color:#888;margin-right:.6em}
.tok{border-radius:2px}.lens span{font-family:ui-monospace,monospace;background:#eef;margin:1px;padding:0 3px}
.lens .neg span{background:#fee}#count{color:#555;margin-left:1em}input{font-size:1em;width:24em}"""

SCRIPT = """const box=document.getElementById('q'),cards=[...document.querySelectorAll('.feature')];
function filter(){const q=box.value.trim().toLowerCase();let n=0;
for(const c of cards){const hit=!q||(q[0]=='#'?c.id=='f'+q.slice(1):c.dataset.search.includes(q));
c.style.display=hit?'':'none';n+=hit;}
document.getElementById('count').textContent=n+' of '+cards.length+' features';}
box.value=new URLSearchParams(location.search).get('q')||'';box.addEventListener('input',filter);filter();"""


def token_text(tokenizer: Any, token: int) -> str:
    return tokenizer.decode([token]).replace("\n", "\u21b5\n")


def context_html(tokenizer: Any, ids: list[int], acts: list[float], peak: float) -> tuple[str, str]:
    """One context as highlighted spans (opacity = activation / the latent's max) and as plain text."""
    centre = max(range(len(acts)), key=acts.__getitem__)
    lo, hi = max(0, centre - BEFORE), min(len(ids), centre + AFTER + 1)
    spans, plain = [], []
    for token, act in zip(ids[lo:hi], acts[lo:hi], strict=True):
        text = token_text(tokenizer, token)
        plain.append(text)
        alpha = 0.0 if peak <= 0 else max(0.0, min(1.0, act / peak))
        style = f' style="background:rgba(255,120,0,{alpha:.2f})"' if act > 0 else ""
        spans.append(f'<span class="tok"{style} title="{act:.2f}">{html.escape(text)}</span>')
    return "".join(spans), "".join(plain)


def histogram_png(summary: FeatureSummary, feature: int, path: Path) -> None:
    """Bar chart of log10 activation counts of one latent (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = summary.hist[feature].tolist()
    edges = LOG10_EDGES.tolist()
    fig, ax = plt.subplots(figsize=(3.6, 1.8), dpi=90)
    ax.bar(edges[:-1], counts, width=edges[1] - edges[0], align="edge", color="#e07b00")
    active = [i for i, c in enumerate(counts) if c]
    if active:
        ax.set_xlim(edges[active[0]] - 0.1, edges[active[-1] + 1] + 0.1)
    ax.set_xlabel("log10 activation (active tokens)", fontsize=7)
    ax.set_ylabel("tokens", fontsize=7)
    ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _lens_html(lens: LensTokens) -> str:
    def spans(items: list[tuple[str, float]]) -> str:
        return "".join(f'<span title="{v:+.2f}">{html.escape(t)}</span>' for t, v in items)

    return f'<div class="lens">promotes: {spans(lens.top)}<div class="neg">suppresses: {spans(lens.bottom)}</div></div>'


def feature_card(tokenizer: Any, summary: FeatureSummary, feature: int, lens: LensTokens, png: str) -> str:
    """The block of one latent: stats, logit lens, histogram, top contexts; ``data-search`` holds its text."""
    peak = float(summary.max[feature])
    contexts, searchable = [], [t for t, _ in lens.top]
    for value, ids, acts in summary.contexts(feature):
        spans, plain = context_html(tokenizer, ids.tolist(), acts.tolist(), peak)
        searchable.append(plain)
        contexts.append(f'<div class="ctx"><span class="v">{value:.2f}</span>{spans}</div>')
    stats = (
        f"max {peak:.2f} &middot; density {float(summary.density[feature]):.3%} &middot; "
        f"mean {float(summary.mean[feature]):.4f}"
    )
    search = html.escape(" ".join(searchable).lower(), quote=True)
    body = "".join(contexts) or "<p>never active on this corpus</p>"
    return (
        f'<div class="feature" id="f{feature}" data-search="{search}"><h2>feature {feature}</h2>'
        f'<div class="stats">{stats}</div><div class="row"><div>{_lens_html(lens)}</div>'
        f'<img src="{png}" alt="activation histogram of feature {feature}"></div>{body}</div>'
    )


def write_dashboard(
    out: Path,
    tokenizer: Any,
    summary: FeatureSummary,
    features: list[int],
    lens: dict[int, LensTokens],
    meta: dict[str, Any],
) -> Path:
    """Write ``out/index.html`` and ``out/png/feature_{i}.png``; returns the page's path."""
    (out / "png").mkdir(parents=True, exist_ok=True)
    cards = []
    for feature in features:
        png = f"png/feature_{feature}.png"
        histogram_png(summary, feature, out / png)
        cards.append(feature_card(tokenizer, summary, feature, lens[feature], png))
    title = html.escape(f"SAE {meta.get('sae', '')}: feature dashboard")
    described = html.escape(", ".join(f"{k}: {v}" for k, v in meta.items()))
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        f"<title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>"
        f'<p class="meta">{described}; {summary.n_tokens} tokens</p>'
        f'<input id="q" type="search" placeholder="search: #id, token or context text">'
        f'<span id="count"></span>{"".join(cards)}'
        f"<script>{SCRIPT}</script></body></html>"
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path

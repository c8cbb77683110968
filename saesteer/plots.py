"""Plots written next to results (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_sweep(rows: Sequence[Any], path: Path, *, title: str) -> Path:
    """Sentiment and distinct-2 against the steering multiplier, collapsed multipliers shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas = [r.alpha for r in rows]
    fig, left = plt.subplots(figsize=(6.4, 4.0))
    left.plot(alphas, [r.sentiment for r in rows], "o-", color="tab:blue", label="sentiment (VADER)")
    left.set_xlabel("multiplier alpha")
    left.set_ylabel("mean sentiment", color="tab:blue")
    left.set_ylim(-1.05, 1.05)
    right = left.twinx()
    right.plot(alphas, [r.distinct_2 for r in rows], "s--", color="tab:orange", label="distinct-2 (fluency proxy)")
    right.set_ylabel("distinct-2", color="tab:orange")
    right.set_ylim(0, 1.05)
    for r in rows:
        if r.collapsed:
            left.axvspan(r.alpha - 0.5, r.alpha + 0.5, color="red", alpha=0.12)
    left.set_title(title + "\n(red: text collapses)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

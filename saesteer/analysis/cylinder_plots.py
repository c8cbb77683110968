"""CRH plots: onset/collapse heat maps over (L, rho), steerability vs angle, and the phase (PCA) picture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from saesteer.analysis import cylinder as crh

if TYPE_CHECKING:
    from saesteer.analysis.cylinder_sweep import ConceptRun


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_heatmaps(runs: Sequence[ConceptRun], path: Path, *, title: str) -> Path:
    """Fraction of outputs with the concept (label 2) and with gibberish (label 3) per (L / |u|, rho)."""
    plt = _pyplot()
    labels = np.concatenate([r.labels for r in runs])  # (n, steps, n_rho)
    scales = np.asarray(runs[0].lengths) / runs[0].norm_u
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.0), sharey=True)
    for ax, label, name in zip(
        axes, (crh.CONCEPT, crh.GIBBERISH), ("concept onset (label 2)", "collapse (label 3)"), strict=True
    ):
        image = ax.imshow(
            (labels == label).mean(0).T,
            origin="lower",
            aspect="auto",
            vmin=0,
            vmax=1,
            cmap="viridis",
            extent=(scales[0], scales[-1], runs[0].rhos[0], runs[0].rhos[-1]),
        )
        ax.set_xlabel("steering length L / |u|")
        ax.set_title(name, fontsize=10)
        fig.colorbar(image, ax=ax, label="fraction of outputs")
    axes[0].set_ylabel("normal penalty rho")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_angle(runs: Sequence[ConceptRun], path: Path, *, title: str) -> Path:
    """Steerability (rho = 0, in units of |u|) against the angle theta between v_d and u, per concept."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for run in runs:
        theta = np.degrees(np.arctan2(run.sin.numpy(), run.cos.numpy()))
        ax.scatter(theta, run.steerability, label=run.concept[:40], alpha=0.8)
    ax.set_xlabel("angle theta(v_d, u) [degrees]")
    ax.set_ylabel("steerability St / |u|")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_phase(runs: Sequence[ConceptRun], path: Path, *, title: str) -> Path:
    """PCA of each concept's difference vectors (train grey, test coloured by steerability): the phase picture."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.8), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        vectors = np.concatenate([run.v_d_train.numpy(), run.v_d.numpy()])
        centred = vectors - vectors.mean(0)
        _, _, vh = np.linalg.svd(centred, full_matrices=False)
        coords = centred @ vh[:2].T
        n_train = run.v_d_train.shape[0]
        ax.scatter(coords[:n_train, 0], coords[:n_train, 1], color="lightgrey", s=14, label="train")
        points = ax.scatter(coords[n_train:, 0], coords[n_train:, 1], c=run.steerability, cmap="plasma", s=40)
        origin, tip = (-vectors.mean(0)) @ vh[:2].T, (run.u.numpy() - vectors.mean(0)) @ vh[:2].T
        ax.annotate("", xy=tuple(tip), xytext=tuple(origin), arrowprops={"arrowstyle": "->", "color": "black"})
        ax.set_title(run.concept[:40], fontsize=9)
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
        fig.colorbar(points, ax=ax, label="St / |u|")
    fig.suptitle(title + "  (arrow: 0 -> u)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_all(runs: Sequence[ConceptRun], out: Path, *, title: str) -> dict[str, Path]:
    return {
        "heatmaps": plot_heatmaps(runs, out / "heatmaps.png", title=title),
        "angle": plot_angle(runs, out / "steerability_vs_angle.png", title=title),
        "phase": plot_phase(runs, out / "phase_pca.png", title=title),
    }

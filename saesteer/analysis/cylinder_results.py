"""CRH sweep outputs: results.json, the plots and an ``eval_result`` record."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saesteer.analysis import cylinder as crh
from saesteer.analysis.cylinder_plots import plot_all
from saesteer.analysis.cylinder_sweep import ConceptRun, SweepConfig


def run_record(run: ConceptRun) -> dict[str, Any]:
    """JSON-ready per-concept result: angles, St, onset/collapse per rho and every labelled output."""
    scales = np.asarray(run.lengths) / run.norm_u
    onset = crh.penalty_delay(run.labels, scales, np.asarray(run.rhos), crh.CONCEPT)
    collapse = crh.penalty_delay(run.labels, scales, np.asarray(run.rhos), crh.GIBBERISH)
    return {
        "concept": run.concept,
        "norm_u": run.norm_u,
        "scales": scales.tolist(),
        "rhos": run.rhos,
        "onset": vars(onset),
        "collapse": vars(collapse),
        "calibration": run.calibration,
        "spiral_r2": crh.spiral_probe(run.v_d, run.steerability / scales.max()).r2 if len(run.questions) >= 3 else None,
        "samples": [
            {
                "question": q,
                "cos_theta": float(run.cos[i]),
                "sin_theta": float(run.sin[i]),
                "norm_v_d": float(run.v_d[i].norm()),
                "steerability_over_u": float(run.steerability[i]),
                "baseline": {"label": run.baseline_labels[i], "output": run.baseline_outputs[i]},
                "labels": run.labels[i].tolist(),
                "outputs": run.outputs[i],
            }
            for i, q in enumerate(run.questions)
        ],
    }


def save_results(
    runs: Sequence[ConceptRun],
    summary: dict[str, Any],
    config: SweepConfig,
    out: Path,
    *,
    labeller: str,
    model_name: str,
    store: Any = None,
    name: str = "cylinder",
) -> dict[str, Path]:
    """Write results.json, the plots and (when ``store`` is given) an ``eval_result`` record."""
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(vars(config))
    payload: dict[str, Any] = {"model": model_name, "config": settings, "labeller": labeller, "summary": summary}
    payload["concepts"] = [run_record(r) for r in runs]
    paths = {"results": out / "results.json"}
    paths["results"].write_text(json.dumps(payload, indent=1, default=float))
    paths.update(
        plot_all(runs, out, title=f"{model_name} layer {config.layer}, {config.positions} positions ({labeller})")
    )
    if store is not None:
        tensors = {"labels": torch.as_tensor(np.concatenate([r.labels for r in runs]))}
        for i, r in enumerate(runs):
            tensors[f"u.{i}"], tensors[f"v_d.{i}"] = r.u.float(), r.v_d.float()
        kept = ("P3", "steerable_fraction", "calibration_heldout_accuracy")
        metrics = {k: v for k, v in summary.items() if k.endswith("_holds") or k in kept}
        store.put(
            "eval_result",
            name,
            tensors,
            model_id=model_name,
            layer=config.layer,
            method="cylinder",
            config={**settings, "concepts": [r.concept for r in runs], "labeller": labeller},
            metrics=metrics,
        )
    return paths

"""The hyper-parameters released with PrOSV (colored-dye/prosv, experiments/axbench/configs/*.sh), per model.

Each released run is one model at one layer, one objective and one position set (``f2+l2`` = PrOSV, ``all`` =
the FSSV baseline). A model of the same shape (hidden size and layer count) gets that run's values; any other
model falls back to the released Gemma-2-2B-L10 values of the same objective and positions with the learning
rates carried to its width by the paper's rule (eta_v ~ n^-1/2, eta_alpha ~ n^1/2). The release does not follow
that rule across its own models (e.g. Gemma-2-9B: beta 2, eta_alpha 10, eta_v 8e-2 for simpo), hence the table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Literal

Loss = Literal["lang", "simpo"]
REFERENCE_WIDTH = 2304  # Gemma-2-2B, the fallback's reference width


@dataclass(frozen=True)
class Hyper:
    """One set of training values (beta, lambda, rates, epochs, batch) and where they come from."""

    factor_init: float
    factor_lr: float
    vector_init: float
    vector_lr: float
    epochs: int
    batch_size: int
    source: str  # the release's config file, or how the values were derived

    def record(self) -> dict[str, float | int | str]:
        """The values as stored in the artifact's config (``source`` as ``hyper_source``)."""
        values: dict[str, float | int | str] = {k: v for k, v in asdict(self).items() if k != "source"}
        return {**values, "hyper_source": self.source}


@dataclass(frozen=True)
class Release:
    """A released run: its model, the model's shape, the steered layer, objective, positions and values."""

    model: str
    width: int
    n_layers: int
    layer: int
    loss: Loss
    fssv: bool
    hyper: Hyper


def _run(
    tag: str, model: str, shape: tuple[int, int], layer: int, loss: Loss, fssv: bool, values: tuple[float, ...]
) -> Release:
    beta, eta_alpha, lam, eta_v, epochs, batch = values
    source = f"{tag}_l{layer}_{loss}_{'all' if fssv else 'prosv'}.sh"
    hyper = Hyper(beta, eta_alpha, lam, eta_v, int(epochs), int(batch), source)
    return Release(model, shape[0], shape[1], layer, loss, fssv, hyper)


G2_2B, G2_9B, G2_27B = (2304, 26), (3584, 42), (4608, 46)
G3_12B, Q25_32B = (3840, 48), (5120, 64)
# (FACTOR_INIT, FACTOR_LR, VEC_INIT, VEC_LR, EPOCHS, BATCH_SIZE) as in each config file.
RELEASES: tuple[Release, ...] = (
    _run("2b", "google/gemma-2-2b-it", G2_2B, 10, "lang", False, (4, 10, 8, 4e-2, 12, 12)),
    _run("2b", "google/gemma-2-2b-it", G2_2B, 10, "simpo", False, (4, 20, 8, 4e-2, 12, 6)),
    _run("2b", "google/gemma-2-2b-it", G2_2B, 10, "lang", True, (2, 1, 1, 4e-2, 12, 12)),
    _run("2b", "google/gemma-2-2b-it", G2_2B, 10, "simpo", True, (2, 0.1, 1, 4e-2, 12, 6)),
    _run("2b", "google/gemma-2-2b-it", G2_2B, 20, "lang", True, (1, 1, 1, 4e-2, 12, 12)),
    _run("9b", "google/gemma-2-9b-it", G2_9B, 20, "lang", False, (2, 0.1, 8, 4e-2, 12, 12)),
    _run("9b", "google/gemma-2-9b-it", G2_9B, 20, "simpo", False, (2, 10, 8, 8e-2, 12, 6)),
    _run("9b", "google/gemma-2-9b-it", G2_9B, 20, "lang", True, (2, 0.1, 8, 4e-2, 18, 12)),
    _run("9b", "google/gemma-2-9b-it", G2_9B, 20, "simpo", True, (2, 1, 8, 8e-2, 24, 6)),
    _run("27b", "unsloth/gemma-2-27b-it-bnb-4bit", G2_27B, 21, "lang", False, (8, 1, 8, 8e-2, 18, 12)),
    _run("27b", "unsloth/gemma-2-27b-it-bnb-4bit", G2_27B, 21, "lang", True, (2, 1, 8, 8e-2, 12, 12)),
    _run("g3_12b", "google/gemma-3-12b-it", G3_12B, 22, "lang", False, (1, 1, 8, 8e-2, 24, 6)),
    _run("g3_12b", "google/gemma-3-12b-it", G3_12B, 22, "simpo", False, (4, 1, 8, 8e-2, 12, 6)),
    _run("g3_12b", "google/gemma-3-12b-it", G3_12B, 22, "lang", True, (1, 1, 8, 8e-2, 12, 12)),
    _run("g3_12b", "google/gemma-3-12b-it", G3_12B, 22, "simpo", True, (2, 1, 8, 8e-2, 12, 6)),
    _run("q25_32b", "Qwen/Qwen2.5-32B-Instruct", Q25_32B, 32, "lang", False, (2, 10, 8, 4e-2, 12, 6)),
    # released as batch 3 x 2 gradient-accumulation steps (GRAD_ACCUM_STEPS=2): one step per 6 pairs
    _run("q25_32b", "Qwen/Qwen2.5-32B-Instruct", Q25_32B, 32, "simpo", False, (1, 10, 8, 8e-2, 6, 6)),
    _run("q25_32b", "Qwen/Qwen2.5-32B-Instruct", Q25_32B, 32, "lang", True, (1, 0.1, 1, 4e-2, 12, 6)),
    _run("q25_32b", "Qwen/Qwen2.5-32B-Instruct", Q25_32B, 32, "simpo", True, (1, 1e-2, 1, 4e-2, 12, 3)),
)


def find_release(width: int, n_layers: int, loss: Loss, fssv: bool, layer: int | None = None) -> Release | None:
    """The released run for a model of this shape, objective and positions (the one at ``layer`` if several)."""
    runs = [r for r in RELEASES if (r.width, r.n_layers, r.loss, r.fssv) == (width, n_layers, loss, fssv)]
    return next((r for r in runs if r.layer == layer), runs[0] if runs else None)


def width_rule(width: int, loss: Loss, fssv: bool) -> Hyper:
    """The fallback: the released Gemma-2-2B-L10 values, rates moved to ``width`` by the scaling rule."""
    base = next(r for r in RELEASES if (r.width, r.layer, r.loss, r.fssv) == (G2_2B[0], 10, loss, fssv))
    ratio = width / REFERENCE_WIDTH
    return Hyper(
        factor_init=base.hyper.factor_init,
        factor_lr=base.hyper.factor_lr * math.sqrt(ratio),
        vector_init=base.hyper.vector_init,
        vector_lr=base.hyper.vector_lr / math.sqrt(ratio),
        epochs=base.hyper.epochs,
        batch_size=base.hyper.batch_size,
        source=f"width rule from {base.hyper.source} (n={REFERENCE_WIDTH} -> n={width})",
    )


def released_hyper(width: int, n_layers: int, loss: Loss, fssv: bool, layer: int | None = None) -> Hyper:
    """The released values for a model of this shape, else the width-rule fallback (``source`` says which)."""
    run = find_release(width, n_layers, loss, fssv, layer)
    if run is None:
        return width_rule(width, loss, fssv)
    note = f"released {run.hyper.source} ({run.model}, layer {run.layer}; matched by shape {width}x{n_layers})"
    return replace(run.hyper, source=note)

"""SAE latent steering: set (clamp), add, scale or ablate SAE latents, keeping the SAE's error term.

No training: ``fit`` resolves the SAEs and the condition from the store and keeps them (whole) in the
artifact, so ``Store.load`` rebuilds it without the SAE records. Formulas: ``saesteer.runtime.sae_edit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pydantic import Field

from saesteer.engines.protocol import DataContext, Fitted, Log, Method, MethodConfig
from saesteer.engines.sae_edit.artifact import SAEEditArtifact
from saesteer.engines.sae_edit.spec import parse_edit, parse_when, resolve_condition, resolve_sae
from saesteer.runtime.conditions import LatentAbove
from saesteer.runtime.sae_edit import LatentEdit

__all__ = ["METHOD", "SAEEditArtifact", "SAEEditConfig", "build_edits", "fit"]


class SAEEditConfig(MethodConfig):
    """Which latents to edit, on which SAE, where."""

    edits: list[str] = Field(
        min_length=1,
        description="latent edits: IDX=V (clamp), IDX+=V (add), IDX*=V (scale), IDX=0 (ablate); "
        "L:IDX=V edits the store's SAE of layer L",
    )
    sae: str | None = Field(None, description="store name of the SAE edited by edits without L: (or give layer)")
    layer: int | None = Field(None, description="layer whose stored SAE edits without L: use (when sae is not given)")
    keep_error: bool = Field(True, description="keep the SAE's error term h - SAE(h) (False: h becomes SAE(h'))")
    positions: str = Field("all", description="position policy of the edit (e.g. all, after_prompt)")
    when: str | None = Field(None, description="edit only where a condition holds: latent:L:IDX>T or proj:NAME>T")


def build_edits(
    model: Any,
    store: Any,
    specs: Sequence[str],
    *,
    sae: str | None = None,
    layer: int | None = None,
    keep_error: bool = True,
    positions: str = "all",
    when_spec: str | None = None,
) -> SAEEditArtifact:
    """The artifact of edit strings ``specs`` (SAEs and condition resolved from ``store`` for ``model``)."""
    from saesteer.models.loading import model_id

    saes: dict[int, Any] = {}
    edits: dict[int, list[LatentEdit]] = {}
    default: tuple[Any, int] | None = None
    for spec in specs:
        at, edit = parse_edit(spec)
        if at is None:
            default = default or resolve_sae(store, model, name=sae, layer=layer)
            saes.setdefault(default[1], default[0])
            at = default[1]
        elif at not in saes:
            saes[at] = resolve_sae(store, model, layer=at)[0]
        edits.setdefault(at, []).append(edit)
    condition = None
    if when_spec is not None:
        condition = resolve_condition(parse_when(when_spec), store, model, saes)
        if isinstance(condition, LatentAbove):
            saes.setdefault(condition.layer, condition.sae)
    return SAEEditArtifact(
        saes,
        edits,
        keep_error=keep_error,
        condition=condition,
        positions=positions,
        model_id=model_id(model),
        config={"sae": sae, "when": when_spec, "edit_specs": list(specs)},
    )


def load_data(config: SAEEditConfig, context: DataContext) -> SAEEditArtifact:
    """The edits with their SAEs (and condition) resolved from the store."""
    return build_edits(
        context.model,
        context.store,
        config.edits,
        sae=config.sae,
        layer=config.layer,
        keep_error=config.keep_error,
        positions=config.positions,
        when_spec=config.when,
    )


def fit(
    model: Any,
    tokenizer: Any,
    data: SAEEditArtifact,
    config: SAEEditConfig,
    *,
    log: Log | None = None,
    progress: bool = True,
) -> Fitted:
    """Nothing to train: the artifact as resolved, with each edited latent's decoder norm as metrics."""
    from saesteer.store import data_hash

    metrics: dict[str, Any] = {"n_edits": sum(len(v) for v in data.edits.values())}
    for layer, edits in data.edits.items():
        norms = torch.as_tensor(data.saes[layer].W_dec).detach().norm(dim=-1)
        for edit in edits:
            metrics[f"decoder_norm.{layer}.{edit.latent}"] = float(norms[edit.latent])
    data.metrics = metrics
    if log is not None:
        log(metrics)
    return Fitted(data, report=dict(metrics), data_hash=data_hash(config.model_dump()))


METHOD = Method(
    name="sae_edit",
    summary="SAE latent steering: clamp/add/scale/ablate latents, keeping the SAE error term",
    config=SAEEditConfig,
    artifact=SAEEditArtifact,
    fit=fit,
    load_data=load_data,
    needs_sae=True,
    example="saesteer train sae_edit --model smollm2-135m-instruct --store runs/store --layer 8 "
    "--edits 123=5 --name clamp-123",
)

"""Text forms of latent edits and conditions, and their resolution against a store and a model.

Edits: ``IDX=V`` (set/clamp), ``IDX+=V`` (add), ``IDX*=V`` (scale), ``IDX=0`` (ablate); ``L:IDX...`` names
the layer whose stored SAE is edited. Conditions: ``latent:L:IDX>T`` (the store's layer-L SAE latent IDX
above T) or ``proj:NAME>T`` (projection on the stored single-vector artifact NAME, at its layer, above T).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from saesteer.errors import ConfigError, SAEError
from saesteer.runtime.conditions import Condition, LatentAbove, ProjectionAbove
from saesteer.runtime.sae_edit import LatentEdit

_EDIT = re.compile(r"^\s*(?:(-?\d+)\s*:)?\s*(\d+)\s*(\+=|\*=|=)\s*(\S+)\s*$")
_LATENT = re.compile(r"^\s*latent:(\d+):(\d+)\s*>\s*(\S+)\s*$")
_PROJ = re.compile(r"^\s*proj:([^>\s]+)\s*>\s*(\S+)\s*$")
_OPS = {"=": "set", "+=": "add", "*=": "scale"}
EDIT_HELP = "write IDX=V (clamp), IDX+=V, IDX*=V or IDX=0 (ablate), with L: in front to name the layer"
WHEN_HELP = "write latent:L:IDX>T or proj:NAME>T"


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{text!r} in {spec!r} is not a number. Fix: {EDIT_HELP}.") from None


def parse_edit(spec: str) -> tuple[int | None, LatentEdit]:
    """(layer or None, edit) of ``spec``; ``IDX=0`` is an ablation."""
    found = _EDIT.match(spec)
    if not found:
        raise ConfigError(f"Cannot read the latent edit {spec!r}. Fix: {EDIT_HELP}.")
    layer, latent, op, value = found.groups()
    number = _number(value, spec)
    kind = "ablate" if op == "=" and number == 0.0 else _OPS[op]
    return (int(layer) if layer is not None else None), LatentEdit(int(latent), kind, number)  # type: ignore[arg-type]


@dataclass(frozen=True)
class WhenSpec:
    """A parsed condition: ``kind`` latent (layer, latent) or proj (source artifact name), above ``threshold``."""

    kind: str
    threshold: float
    layer: int = 0
    latent: int = 0
    source: str = ""


def parse_when(spec: str) -> WhenSpec:
    if found := _LATENT.match(spec):
        layer, latent, threshold = found.groups()
        return WhenSpec("latent", _number(threshold, spec), layer=int(layer), latent=int(latent))
    if found := _PROJ.match(spec):
        source, threshold = found.groups()
        return WhenSpec("proj", _number(threshold, spec), source=source)
    raise ConfigError(f"Cannot read the condition {spec!r}. Fix: {WHEN_HELP}.")


def resolve_sae(store: Any, model: Any, *, name: str | None = None, layer: int | None = None) -> tuple[Any, int]:
    """(SAE, layer): the SAE stored as ``name``, else the store's latest SAE of ``model`` for ``layer``."""
    from saesteer.models.loading import model_id

    if store is None:
        raise ConfigError("SAE latent edits read their SAE from a store. Fix: pass --store DIR.")
    if name is not None:
        record = store.get(name, kind="sae")
        if record.model_id and record.model_id != model_id(model):
            raise SAEError(
                f"SAE {name!r} was trained on {record.model_id!r}, not {model_id(model)!r}. "
                "Fix: use an SAE of this model (saesteer store ls) or load the model it belongs to."
            )
        if layer is not None and record.layer is not None and record.layer != layer:
            raise SAEError(f"SAE {name!r} reads layer {record.layer}, not {layer}. Fix: drop the layer or the name.")
        at = record.layer if record.layer is not None else layer
        if at is None:
            raise SAEError(f"SAE {name!r} names no layer. Fix: pass layer=L with it.")
        return store.load(name, model, kind="sae"), int(at)
    if layer is None:
        raise ConfigError("A latent edit needs its SAE. Fix: give sae: NAME or layer: L (or write edits as L:IDX=V).")
    record = store.find_sae(model_id(model), layer)
    return store.load(record.name, model, kind="sae"), layer


def resolve_condition(spec: WhenSpec, store: Any, model: Any, saes: dict[int, Any] | None = None) -> Condition:
    """The runtime condition of ``spec`` (reusing an SAE of ``saes`` for its layer when there is one)."""
    if spec.kind == "latent":
        sae = (saes or {}).get(spec.layer)
        if sae is None:
            sae = resolve_sae(store, model, layer=spec.layer)[0]
        return LatentAbove(sae, spec.latent, spec.threshold, spec.layer)
    if store is None:
        raise ConfigError("A proj: condition reads its direction from a store. Fix: pass --store DIR.")
    artifact = store.load(spec.source, model)
    found = artifact.additive_vector()
    if found is None:
        raise ConfigError(
            f"{spec.source!r} ({artifact.method}) is not one constant vector, so it gives no direction. "
            "Fix: use a single-layer additive artifact (e.g. CAA) for proj:NAME>T."
        )
    layer, vector = found
    return ProjectionAbove(vector, spec.threshold, layer, artifact.hook_point or "resid_post")

"""Methods under test: what each one steers with (a stored artifact, a vector fitted on the task's data,
a prompt, or nothing) for one benchmark unit, and the factors it is swept over."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from saesteer.bench.config import MethodSpec
from saesteer.errors import ConfigError


@dataclass
class Resolved:
    """How a method answers one unit: ``steering`` (None = plain model), ``prompted`` (prompting baseline)."""

    steering: Any
    prompted: bool = False
    positions: str | None = None


def artifact_layers(artifact: Any) -> str:
    """The layer(s) an artifact touches, for the leaderboard."""
    if hasattr(artifact, "vectors") and callable(artifact.vectors):
        return ",".join(str(k) for k in sorted(artifact.vectors())) or "-"
    layers = getattr(artifact, "layers", None)
    if layers:
        return ",".join(str(x) for x in layers)
    layer = getattr(artifact, "layer", None)
    return "-" if layer is None else str(layer)


def load_artifact(kind: str, store: Any, name: str) -> Any:
    """A stored artifact through its engine's ``load(store, name)`` (CAA vectors: ``store.load_vector``)."""
    if store is None:
        raise ConfigError(f"Method {kind} loads {name!r} from a store. Fix: set 'store' in the benchmark config.")
    if kind == "caa":
        return store.load_vector(name)
    engine = importlib.import_module(f"saesteer.engines.{kind}")
    return engine.load(store, name)


def method_factors(spec: MethodSpec) -> list[float]:
    """The factors a method runs at: 0 for the unsteered model, 1 ("on") for prompting, else its grid."""
    if spec.kind == "unsteered":
        return [0.0]
    if spec.kind == "prompting":
        return [1.0]
    return list(spec.factors)


def resolve(spec: MethodSpec, unit: Any, task: Any, store: Any, model: Any, tokenizer: Any) -> Resolved:
    """The steering for ``spec`` on ``unit``; ``{concept_id}`` in an artifact name is filled per concept."""
    if spec.kind in ("unsteered", "prompting"):
        return Resolved(None, prompted=spec.kind == "prompting")
    if spec.artifact is not None:
        concept_id = unit.concept["concept_id"] if unit.concept else ""
        artifact = load_artifact(spec.kind, store, spec.artifact.format(concept_id=concept_id))
        return Resolved(artifact, positions=spec.positions)
    if spec.kind == "caa" and hasattr(task, "contrast_pairs"):
        from saesteer.engines import caa

        assert spec.layer is not None
        vectors = caa.fit(model, tokenizer, task.contrast_pairs(unit), layers=spec.layer, read="mean", progress=False)
        return Resolved(vectors[spec.layer], positions=spec.positions)
    raise ConfigError(
        f"Method {spec.label} ({spec.kind}) has no artifact and task {task.name} has no contrastive data to fit it. "
        "Fix: train it first (saesteer train ...) and set 'artifact'."
    )

"""Methods under test: what each one steers with (a stored artifact of any registered method, a CAA vector
fitted on the task's contrastive data, a prompt, or nothing) for one benchmark unit, and its factors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from saesteer.bench.config import BASELINES, MethodSpec
from saesteer.bench.models import BenchModels
from saesteer.errors import ConfigError


@dataclass
class Resolved:
    """How a method answers one unit: ``steering`` (None = plain model), ``prompted`` (prompting baseline)."""

    steering: Any
    prompted: bool = False
    positions: str | None = None


def artifact_layers(artifact: Any) -> str:
    """The layer(s) an artifact touches, for the leaderboard."""
    return ",".join(str(layer) for layer in artifact.layers) or "-"


def method_factors(spec: MethodSpec) -> list[float]:
    """The factors a method runs at: 0 for the unsteered model, 1 ("on") for prompting, else its grid."""
    if spec.kind == "unsteered":
        return [0.0]
    if spec.kind == "prompting":
        return [1.0]
    return list(spec.factors)


def _fit_on_pairs(spec: MethodSpec, pairs: Any, model: Any, tokenizer: Any) -> Any:
    """The method fitted on the unit's contrastive pairs through the registry (CAA: DiffMean of the
    mean completion-token states at ``spec.layer``)."""
    from saesteer.engines.registry import get_method

    method = get_method(spec.kind)
    config = method.config.model_validate({"layer": spec.layer, "read": "mean"})
    return method.fit(model, tokenizer, pairs, config, progress=False).artifact


def resolve(spec: MethodSpec, unit: Any, task: Any, store: Any, models: BenchModels) -> Resolved:
    """The steering for ``spec`` on ``unit`` of ``task`` (a BenchTask); ``{concept_id}`` in an artifact name is
    filled per concept; a stored artifact is rebuilt by ``store.load`` and checked against the HF model (a
    vLLM engine checks it against the served model's layers and width when it steers); a method fitted on
    the unit's pairs is fitted on the HF model."""
    if spec.kind in BASELINES:
        return Resolved(None, prompted=spec.kind == "prompting")
    if spec.artifact is not None:
        if store is None:
            raise ConfigError(
                f"Method {spec.label} loads {spec.artifact!r} from a store. Fix: set 'store' in the benchmark config."
            )
        concept_id = unit.concept["concept_id"] if unit.concept else ""
        checked = models.generator if models.backend == "hf" else None
        return Resolved(store.load(spec.artifact.format(concept_id=concept_id), checked), positions=spec.positions)
    if hasattr(task.task, "contrast_pairs"):
        fitted = _fit_on_pairs(spec, task.task.contrast_pairs(unit), *models.hf())
        return Resolved(fitted, positions=spec.positions)
    raise ConfigError(
        f"Method {spec.label} ({spec.kind}) has no artifact and task {task.name} has no contrastive data to fit it. "
        "Fix: train it first (saesteer train ...) and set 'artifact'."
    )

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
    """How a method answers one unit: ``steering`` (None = plain model), ``prompted`` (prompting baseline);
    ``variant`` says which protocol variant answered (kept in the records and the run context)."""

    steering: Any
    prompted: bool = False
    positions: str | None = None
    variant: str | None = None


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


def _axbench_diffmean(spec: MethodSpec, unit: Any, task: Any, models: BenchModels) -> Resolved:
    """AxBench's DiffMean of the unit's concept at ``spec.layer`` (fitted on the HF model): a factor f adds
    f * max_act * w on all positions unless ``spec.positions`` says otherwise."""
    from saesteer.engines.caa.diffmean import fit_diffmean

    if spec.layer is None:
        raise ConfigError(f"Method {spec.label} fits DiffMean on the task's data. Fix: set 'layer'.")
    positives, negatives, negatives_used = task.task.diffmean_texts(unit)
    fitted = fit_diffmean(
        *models.hf(), positives, negatives, layer=spec.layer, config={"negatives": negatives_used, "unit": unit.name}
    )
    return Resolved(fitted, positions=spec.positions, variant="axbench diffmean (unit norm x max_act)")


def resolve(spec: MethodSpec, unit: Any, task: Any, store: Any, models: BenchModels) -> Resolved:
    """The steering for ``spec`` on ``unit`` of ``task`` (a BenchTask); ``{concept_id}`` in an artifact name is
    filled per concept; a stored artifact is rebuilt by ``store.load`` and checked against the HF model (a
    vLLM engine checks it against the served model's layers and width when it steers); a method fitted on
    the unit's pairs is fitted on the HF model."""
    if spec.kind in BASELINES:
        prompted = spec.kind == "prompting"
        return Resolved(None, prompted=prompted, variant=task.prompt_source(unit) if prompted else None)
    if spec.artifact is not None:
        if store is None:
            raise ConfigError(
                f"Method {spec.label} loads {spec.artifact!r} from a store. Fix: set 'store' in the benchmark config."
            )
        concept_id = unit.concept["concept_id"] if unit.concept else ""
        checked = models.generator if models.backend == "hf" else None
        return Resolved(store.load(spec.artifact.format(concept_id=concept_id), checked), positions=spec.positions)
    if hasattr(task.task, "diffmean_texts") and task.spec.diffmean == "axbench":
        return _axbench_diffmean(spec, unit, task, models)
    if hasattr(task.task, "contrast_pairs"):
        fitted = _fit_on_pairs(spec, task.task.contrast_pairs(unit), *models.hf())
        return Resolved(fitted, positions=spec.positions, variant="caa mean difference of response tokens")
    raise ConfigError(
        f"Method {spec.label} ({spec.kind}) has no artifact and task {task.name} has no contrastive data to fit it. "
        "Fix: train it first (saesteer train ...) and set 'artifact'."
    )

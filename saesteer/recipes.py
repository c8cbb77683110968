"""Recipes: YAML files that name a job and its typed, validated parameters (``saesteer run FILE``).

A bench recipe's ``train`` steps are typed too: ``{method: NAME, name: RECORD, config: {...}}`` where
``config`` is the registered method's Config (validated when the recipe loads, so a typo fails before
anything runs), or an SAE step (``method: sae`` with SAETrainConfig fields, ``method: sae_add`` with
the SAE's source). Strings in a method step may hold ``{samples}`` (the data samples shipped with
saesteer) and, with ``per_concept``, ``{concept}`` / ``{concept_id}`` (one step per AxBench concept).
A bench recipe's ``backend: hf | vllm`` picks what generates the benchmark; its train steps always run on
the HF model (they read hidden states and take gradients), before the vLLM engine loads.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from saesteer.bench.config import BenchConfig
from saesteer.errors import ConfigError

CONCEPT_FIELDS = ("concept", "concept_id")
VALIDATION_FILL: dict[str, Any] = {
    "concept": "concept",
    "concept_id": 0,
}  # stand-ins that check a per-concept step at load


class _Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SAESettings(_Recipe):
    """What to train (``saesteer.saes.SAETrainConfig``'s fields, typed and range-checked)."""

    layer: int
    architecture: Literal["topk", "jumprelu"] = "topk"
    d_sae: int = Field(4608, gt=0)
    k: int = Field(32, gt=0)
    l0_coefficient: float = Field(2.0, gt=0)
    tokens: int = Field(32_768, gt=0)
    steps: int = Field(600, gt=0)
    batch_size: int = Field(1024, gt=0)
    lr: float = Field(4e-4, gt=0)
    hook_point: Literal["resid_post", "resid_pre"] = "resid_post"
    corpus: str = "python-docs-chat"
    seed: int = 0

    def train_config(self) -> Any:
        """The ``SAETrainConfig`` these settings describe."""
        from saesteer.saes import SAETrainConfig

        return SAETrainConfig(**{name: getattr(self, name) for name in SAESettings.model_fields})


class SAETrainRecipe(SAESettings):
    """Train an SAE with sae-lens on a plain HF model and keep it in a store."""

    job: Literal["sae_train"]
    model: str
    store: str
    name: str | None = None


class SAEStep(_Recipe):
    """Train an SAE on the recipe's model (``saesteer sae train``)."""

    method: Literal["sae"]
    name: str
    config: SAESettings


class SAEAddSettings(_Recipe):
    """An sae-lens directory or release to register (``saesteer sae add``)."""

    source: str
    sae_id: str | None = None
    layer: int
    hook_point: Literal["resid_post", "resid_pre"] = "resid_post"


class SAEAddStep(_Recipe):
    """Register an SAE for the recipe's model."""

    method: Literal["sae_add"]
    name: str
    config: SAEAddSettings


def placeholders(value: Any) -> set[str]:
    """The ``{field}`` names in the strings of ``value`` (nested lists and mappings included)."""
    if isinstance(value, str):
        return {field for _, field, _, _ in string.Formatter().parse(value) if field is not None}
    if isinstance(value, dict):
        return set().union(*map(placeholders, value.values()))
    if isinstance(value, list):
        return set().union(*map(placeholders, value))
    return set()


def fill(value: Any, values: dict[str, Any]) -> Any:
    """``value`` with its strings formatted with ``values``."""
    if isinstance(value, str):
        return value.format(**values)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


def _braced(names: set[str]) -> str:
    return ", ".join("{" + name + "}" for name in sorted(names))


class MethodStep(_Recipe):
    """Fit a registered steering method (``saesteer train METHOD``); ``config`` is that method's Config."""

    method: str
    name: str
    config: dict[str, Any] = Field(default_factory=dict)
    per_concept: bool = False

    @model_validator(mode="after")
    def _valid(self) -> MethodStep:
        from saesteer.engines.registry import get_method
        from saesteer.engines.training import parse_config

        known = {"samples", *CONCEPT_FIELDS} if self.per_concept else {"samples"}
        used = placeholders([self.name, self.config])
        if used - known:
            hint = "" if self.per_concept else " (concept placeholders need per_concept: true)"
            raise ValueError(
                f"unknown placeholder(s) {_braced(used - known)} in step {self.name!r}{hint}; known: {_braced(known)}"
            )
        if self.per_concept and not placeholders(self.name) & set(CONCEPT_FIELDS):
            raise ValueError(f"per_concept step {self.name!r} needs {{concept_id}} in its name (one record each)")
        try:
            parse_config(get_method(self.method), self.filled(VALIDATION_FILL)[1])
        except ConfigError as exc:
            raise ValueError(f"step {self.name!r}: {exc}") from exc
        except (KeyError, IndexError, AttributeError, ValueError) as exc:  # a format spec the values cannot take
            raise ValueError(f"step {self.name!r}: cannot fill its placeholders ({exc})") from exc
        return self

    def filled(self, concept: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(record name, config) with the placeholders filled from ``concept`` and the samples directory."""
        from saesteer.data import SAMPLES

        values = {**concept, "samples": str(SAMPLES)}
        return fill(self.name, values), fill(self.config, values)


def _step_kind(value: Any) -> str:
    method = value.get("method") if isinstance(value, dict) else getattr(value, "method", None)
    return method if method in ("sae", "sae_add") else "step"


TrainStep = Annotated[
    Annotated[SAEStep, Tag("sae")] | Annotated[SAEAddStep, Tag("sae_add")] | Annotated[MethodStep, Tag("step")],
    Discriminator(_step_kind),
]


class BenchRecipe(BenchConfig):
    """Train artifacts (optional ``train`` steps, on HF), then run the benchmark on ``backend``
    (``saesteer run`` / ``saesteer bench``)."""

    job: Literal["bench"]
    train: list[TrainStep] = Field(default_factory=list)


RECIPES: dict[str, type[BaseModel]] = {"sae_train": SAETrainRecipe, "bench": BenchRecipe}


def load_recipe(path: str | os.PathLike[str]) -> BaseModel:
    """Parse and validate a recipe; unknown or ill-typed fields are errors that name the field."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"Recipe {source} does not exist. Fix: pass a file from recipes/.")
    try:
        data: Any = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"Recipe {source} is not valid YAML ({exc}). Fix: repair the file.") from exc
    if not isinstance(data, dict) or data.get("job") not in RECIPES:
        raise ConfigError(f"Recipe {source} needs 'job: <one of {', '.join(RECIPES)}>'. Fix: add the job field.")
    try:
        return RECIPES[data["job"]].model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        fix = "" if "Fix:" in problems else " Fix: correct or remove those fields."
        raise ConfigError(f"Recipe {source}: {problems.rstrip('.')}.{fix}") from exc

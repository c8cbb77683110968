"""Recipes: YAML files that name a job and its typed, validated parameters (``saesteer run FILE``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from saesteer.bench.config import BenchConfig
from saesteer.errors import ConfigError


class _Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SAETrainRecipe(_Recipe):
    """Train an SAE with sae-lens on a plain HF model and keep it in a store."""

    job: Literal["sae_train"]
    model: str
    layer: int
    store: str
    name: str | None = None
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


class TrainStep(_Recipe):
    """A ``saesteer train METHOD`` call run before the benchmark; ``args`` become ``--flag value`` options
    (``{concept}`` and ``{concept_id}`` are filled per AxBench concept when ``per_concept`` is set,
    ``{samples}`` is the directory of the data samples shipped with saesteer).
    Skipped when the store already holds a record of that name."""

    # sae: ``saesteer sae train``; sae_add: ``saesteer sae add SOURCE`` (args: source, sae_id, layer, name)
    method: Literal["sae", "sae_add", "caa", "corrsteer", "prosv", "psr"]
    args: dict[str, str | int | float | bool]
    per_concept: bool = False

    @model_validator(mode="after")
    def _named(self) -> TrainStep:
        if not isinstance(self.args.get("name"), str):
            raise ValueError("train step args need 'name' (the record the step stores)")
        return self


class BenchRecipe(BenchConfig):
    """Train artifacts (optional ``train`` steps), then run the benchmark (``saesteer run`` / ``saesteer bench``)."""

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
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Recipe {source}: {problems}. Fix: correct or remove those fields.") from exc

"""Train any registered method: resolve its data, fit, track (wandb, offline by default), store (with the
hashes of the prompts it was fitted on, which the bench checks against what it scores)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import Tensor

from saesteer.engines.protocol import DataContext, Fitted, Method, MethodConfig
from saesteer.engines.registry import get_method
from saesteer.errors import ConfigError

PROMPT_FIELDS = ("prompt", "question", "input", "instruction")  # where a data row keeps its prompt


def prompt_hash(text: str) -> int:
    """A signed 64-bit id of a prompt: the first 8 bytes of the sha256 of its whitespace-normalised text."""
    digest = hashlib.sha256(" ".join(text.split()).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def prompt_hashes(prompts: Iterable[str]) -> Tensor:
    """The sorted, distinct ``prompt_hash`` of each prompt, as an int64 tensor (8 bytes a sample)."""
    return torch.tensor(sorted({prompt_hash(p) for p in prompts}), dtype=torch.int64)


def _row_prompt(row: Any) -> str | None:
    if isinstance(row, str):
        return row
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        row = dataclasses.asdict(row)
    if isinstance(row, dict):
        return next((row[key] for key in PROMPT_FIELDS if isinstance(row.get(key), str)), None)
    return None


def training_prompts(data: Any) -> list[str] | None:
    """The prompts in a method's data: ``data.train_prompts()``, ``data.prompts``, or a file or list of rows
    (strings, or mappings/dataclasses with a prompt, question, input or instruction field); None if unreadable."""
    if callable(getattr(data, "train_prompts", None)):
        return [str(p) for p in data.train_prompts()]
    if isinstance(data, (str, os.PathLike)):
        from saesteer.data import read_rows

        data = read_rows(data)
    elif isinstance(getattr(data, "prompts", None), list):
        data = data.prompts
    if not isinstance(data, (list, tuple)):
        return None
    found = [prompt for prompt in map(_row_prompt, data) if prompt is not None]
    return found if len(found) == len(data) else None


def parse_config(method: Method, values: MethodConfig | dict[str, Any]) -> MethodConfig:
    """``values`` validated as ``method``'s Config; bad or unknown fields are a ConfigError naming them."""
    if isinstance(values, method.config):
        return values
    if isinstance(values, MethodConfig):
        raise ConfigError(
            f"A {type(values).__name__} is not a config of method {method.name!r}. "
            f"Fix: pass a {method.config.__name__} (or a dict of its fields)."
        )
    try:
        return method.config.model_validate(dict(values))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(config)'}: {e['msg']}" for e in exc.errors())
        fields = ", ".join(method.config.model_fields)
        raise ConfigError(
            f"Invalid {method.name} config: {problems}. Fix: correct those fields (known fields: {fields})."
        ) from exc


def train(
    method: str | Method,
    model: Any,
    tokenizer: Any,
    config: MethodConfig | dict[str, Any],
    *,
    store: Any = None,
    name: str | None = None,
    data: Any = None,
    wandb_project: str | None = None,
    progress: bool = True,
) -> tuple[Fitted, Any]:
    """Fit ``method`` (data from ``data`` or the config's data fields) and, with ``store`` and ``name``,
    save the artifact, its companions and the hashes of its training prompts (``fitted.train_prompts``, else
    ``training_prompts(data)``; none when neither is known). Returns (fitted, record or None). Only rank 0 writes."""
    from saesteer.distributed import world
    from saesteer.models.loading import model_fingerprint
    from saesteer.paths import cache_dir
    from saesteer.tracking import wandb_run

    spec = get_method(method) if isinstance(method, str) else method
    settings = parse_config(spec, config)
    if data is None:
        data = spec.load_data(settings, DataContext(model, tokenizer, store, progress))
    directory = Path(store.root) / "wandb" if store is not None else cache_dir("wandb")
    tracked = {"method": spec.name, **settings.model_dump(mode="json")}
    with wandb_run(wandb_project, tracked, directory=directory, name=name, job_type=spec.name) as run:
        fitted = spec.fit(model, tokenizer, data, settings, log=None if run is None else run.log, progress=progress)
    record = None
    if store is not None and name and world().is_main:
        prompts = fitted.train_prompts if fitted.train_prompts is not None else training_prompts(data)
        record = store.save(
            name,
            fitted.artifact,
            companions=fitted.companions,
            data_hash=fitted.data_hash,
            model_fingerprint=model_fingerprint(model),
            train_hashes=None if prompts is None else prompt_hashes(prompts),
        )
    return fitted, record

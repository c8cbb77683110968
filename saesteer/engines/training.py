"""Train any registered method: resolve its data, fit, track (wandb, offline by default), store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from saesteer.engines.protocol import DataContext, Fitted, Method, MethodConfig
from saesteer.engines.registry import get_method
from saesteer.errors import ConfigError


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
    save the artifact and its companions. Returns (fitted, record or None). Only rank 0 writes."""
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
        record = store.save(
            name,
            fitted.artifact,
            companions=fitted.companions,
            data_hash=fitted.data_hash,
            model_fingerprint=model_fingerprint(model),
        )
    return fitted, record

"""A bench recipe's train steps: typed steps run in order on one loaded model, records already stored skipped."""

from __future__ import annotations

from typing import Any

from saesteer.cli import sae
from saesteer.cli.common import console
from saesteer.cli.reports import print_report
from saesteer.errors import ConfigError


def _concepts(recipe: Any) -> list[dict[str, Any]]:
    from saesteer.bench.tasks import load_concepts

    spec = next((t for t in recipe.tasks if t.kind == "axbench"), None)
    if spec is None:
        raise ConfigError("A per_concept train step needs an axbench task in the recipe. Fix: add one.")
    return load_concepts(spec)


def _instances(recipe: Any) -> list[tuple[Any, str, Any]]:
    """(step, record name, config) for every step (once per concept for ``per_concept`` steps)."""
    from saesteer.recipes import MethodStep

    concepts = _concepts(recipe) if any(getattr(s, "per_concept", False) for s in recipe.train) else []
    found: list[tuple[Any, str, Any]] = []
    for step in recipe.train:
        if not isinstance(step, MethodStep):
            found.append((step, step.name, step.config))
        else:
            found += [(step, *step.filled(concept)) for concept in (concepts if step.per_concept else [{}])]
    return found


def run_train_steps(recipe: Any) -> None:
    """Fit what the recipe's train steps name into its store (single process), skipping stored names."""
    from saesteer.distributed import world
    from saesteer.engines.training import train
    from saesteer.models import load_model
    from saesteer.saes import load_sae
    from saesteer.store import Store

    if recipe.store is None:
        raise ConfigError("Train steps write to a store. Fix: set 'store' in the recipe.")
    if not world().is_main:
        raise ConfigError(
            "Train steps run single-process. Fix: run 'saesteer bench' once, then relaunch with --no-train."
        )
    store = Store(recipe.store)
    known = {r.name for r in store.find()}
    pending = [(step, name, config) for step, name, config in _instances(recipe) if name not in known]
    if not pending:
        return
    model, tokenizer = load_model(recipe.model)
    for step, name, config in pending:
        if name in known:  # two steps (or concepts) naming one record: the first one wins
            continue
        console.print(f"[bold]train[/] {step.method} {name}")
        if step.method == "sae":
            sae.train_and_store(model, tokenizer, config.train_config(), store, name)
        elif step.method == "sae_add":
            sae.register(
                model,
                load_sae(config.source, config.sae_id),
                store,
                name,
                source=config.source,
                sae_id=config.sae_id,
                layer=config.layer,
                hook_point=config.hook_point,
            )
        else:
            fitted, record = train(step.method, model, tokenizer, config, store=store, name=name)
            print_report(step.method, name, fitted, record)
        known.add(name)

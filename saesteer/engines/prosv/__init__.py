"""PrOSV (arXiv 2605.05983): a prompt-only steering vector with a jointly trained factor, as a registered method.

Intervention: h <- h + alpha * v at the output of block ``layer``, only on the first p and last s prompt tokens
("f{p}+l{s}", default f2+l2; p and s are capped at the prompt length, s = L - p if p + s > L), applied once at
prefill, so decode steps are untouched. ``positions="all"`` gives the FSSV baseline. See ``training`` for the
optimiser (the trainable vector is applied through the runtime's ``steer``), ``released`` for the released
per-model training values (and the width-rule fallback), ``data`` for the training triples.

>>> triples = load_triples(sample_path("axbench/train.jsonl"), concept_id=2)
>>> fitted = fit(model, tokenizer, triples, ProsvConfig(layer=12, concept="C/C++ syntax"))
>>> store.save("cpp", fitted.artifact); generate(model, tokenizer, prompts, steering=store.load("cpp", model))
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from saesteer.engines.prosv.artifact import ProsvArtifact
from saesteer.engines.prosv.config import ProsvConfig
from saesteer.engines.prosv.data import Triple, build_triples, fill_neutral, load_instructions, load_triples
from saesteer.engines.prosv.training import make_optimizer, train_vector
from saesteer.engines.protocol import DataContext, Fitted, Log, Method
from saesteer.errors import ConfigError, DataError

__all__ = [
    "METHOD",
    "ProsvArtifact",
    "ProsvConfig",
    "Triple",
    "build_triples",
    "fill_neutral",
    "fit",
    "load_data",
    "load_instructions",
    "load_triples",
    "make_optimizer",
    "train_vector",
]


def load_data(config: ProsvConfig, context: DataContext) -> list[Triple]:
    """Triples from ``config.data``, or written by ``config.generator`` (default: the bundled model). simpo
    takes its loser from the data (``neutral="data"``) or lets the model answer where it has none ("model")."""
    from saesteer.models import DEFAULT_MODEL, load_model
    from saesteer.models.loading import model_id

    model, tokenizer = context.model, context.tokenizer
    if config.data is not None:
        triples = load_triples(
            config.data, concept=config.concept, concept_id=config.concept_id, limit=config.max_examples
        )
    else:
        if not config.concept.strip():
            raise ConfigError("PrOSV needs --concept (or --data). Fix: pass --concept 'a description'.")
        name = config.generator or DEFAULT_MODEL
        writer, writer_tokenizer = (model, tokenizer) if name == model_id(model) else load_model(name)
        limit = min(config.num_instructions, config.max_examples or config.num_instructions)
        instructions = load_instructions(config.instructions, limit=limit)
        triples = build_triples(
            writer, writer_tokenizer, config.concept, instructions, max_new_tokens=config.max_response_tokens
        )
    missing = sum(t.neutral_response is None for t in triples)
    if config.loss == "simpo" and missing and config.neutral == "data":
        raise DataError(
            f"{missing} of {len(triples)} training examples have no neutral response for the simpo loss. Fix: use "
            "data with one (the release's contrast_train_data, or neutral_response fields), build the data "
            "(no --data), or pass --neutral model to let the model answer (a departure from the release)."
        )
    if config.loss == "simpo" and missing:
        triples = fill_neutral(model, tokenizer, triples, max_new_tokens=config.max_response_tokens)
    return triples


def fit(
    model: Any,
    tokenizer: Any,
    data: list[Triple],
    config: ProsvConfig,
    *,
    log: Log | None = None,
    progress: bool = True,
) -> Fitted:
    """Train (alpha, v) on the triples; the artifact steers with the trained factor."""
    from saesteer.store import data_hash

    artifact = train_vector(model, tokenizer, data, config, log=log, progress=progress)
    return Fitted(artifact, report=dict(artifact.metrics), data_hash=data_hash([asdict(t) for t in data]))


METHOD = Method(
    name="prosv",
    summary="PrOSV: prompt-only steering vector with a jointly trained factor",
    config=ProsvConfig,
    artifact=ProsvArtifact,
    fit=fit,
    load_data=load_data,
    example="saesteer train prosv --model smollm2-135m-instruct --layer 12 --concept 'pirate speech' "
    "--store runs/store --name pirate",
)

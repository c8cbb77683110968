"""PrOSV's config: training settings (the released per-model values by default, see ``released``) and data fields."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import Field, field_validator

from saesteer.engines.prosv.released import Hyper, Loss, released_hyper, width_rule
from saesteer.engines.protocol import MethodConfig
from saesteer.errors import ConfigError
from saesteer.runtime.positions import AllTokens, PromptPrefixSuffix, parse_positions

Preset = Literal["released", "width_rule"]
Neutral = Literal["data", "model"]
SIMPO_BETA, SIMPO_GAMMA, SIMPO_SCALER = 1.0, 0.0, 1.0
HYPER_FIELDS = ("factor_init", "factor_lr", "vector_init", "vector_lr", "epochs", "batch_size")
DATA_FIELDS = ("data", "concept_id", "max_examples", "generator", "instructions", "num_instructions")


def stored_positions(spec: str) -> str:
    """A PrOSV position spec (any form ``parse_positions`` reads) as stored: ``f{p}+l{s}`` or ``all`` (FSSV).

    PrOSV steers a prompt prefix/suffix (at least one token) or, as the FSSV baseline, every token; e.g.
    ``f4`` is stored as ``f4+l0``, ``prompt_prefix_suffix(2,2)`` as ``f2+l2`` and ``fssv`` as ``all``."""
    try:
        policy = parse_positions(spec)
    except ConfigError:
        policy = None
    if isinstance(policy, AllTokens):
        return "all"
    if isinstance(policy, PromptPrefixSuffix) and policy.prefix + policy.suffix > 0:
        return f"f{policy.prefix}+l{policy.suffix}"
    raise ValueError(
        f"Invalid PrOSV positions {spec!r}. Fix: use f{{p}}+l{{s}} (e.g. f2+l2; at least one token), "
        "f{p} or l{s} alone (e.g. f4), or 'all' for the full-sequence (FSSV) baseline."
    )


class ProsvConfig(MethodConfig):
    """PrOSV settings; ``None`` training values come from ``preset`` (see ``hyper``)."""

    layer: int = Field(description="block whose output is steered")
    concept: str = Field("", description="concept description (looked up in AxBench data, or used to build data)")
    loss: Loss = Field("lang", description="lang (response cross-entropy) or simpo (RePS scaled SimPO)")
    positions: str = Field("f2+l2", description="f{p}+l{s}, f{p}, l{s}, or all (the FSSV baseline)")
    preset: Preset = Field(
        "released",
        description="defaults of the training values: released (the release's config for a model of that shape "
        "- hidden size and layer count - else the width rule) or width_rule (always the Gemma-2-2B-L10 config, "
        "rates moved by sqrt(width))",
    )
    epochs: int | None = Field(None, ge=1, description="passes over the training examples (default: preset)")
    batch_size: int | None = Field(None, ge=1, description="default: preset (2B: 12 lang, 6 simpo)")
    factor_init: float | None = Field(
        None, gt=0, description="beta: alpha0 = beta * sqrt(hidden size) (default: preset)"
    )
    vector_init: float | None = Field(None, gt=0, description="lambda: v0 ~ U(+-lambda / sqrt(n)) (default: preset)")
    factor_lr: float | None = Field(None, gt=0, description="eta_alpha (default: preset)")
    vector_lr: float | None = Field(None, gt=0, description="eta_v (default: preset)")
    neutral: Neutral = Field(
        "data",
        description="simpo loser: data (the data's neutral responses, e.g. the release's contrast data; an error "
        "when missing) or model (missing ones are the steered model's own greedy answers, a departure)",
    )
    max_grad_norm: float = Field(1.0, gt=0, description="gradient-norm clip on v")
    max_response_tokens: int = Field(128, ge=1, description="response tokens trained on (and generated)")
    seed: int = Field(0, description="seed of the initialisation and the batch order")
    data: str | None = Field(None, description="training triples or an AxBench train file (default: build them)")
    concept_id: int | None = Field(None, description="AxBench concept id (instead of a lookup by description)")
    max_examples: int | None = Field(None, ge=1, description="use at most this many training examples")
    generator: str | None = Field(None, description="model that writes the data without --data (default: bundled)")
    instructions: str | None = Field(None, description="instructions file for building data (JSONL)")
    num_instructions: int = Field(36, ge=1, description="instructions used when building data")

    @field_validator("positions")
    @classmethod
    def _positions(cls, value: str) -> str:
        return stored_positions(value)

    def hyper(self, width: int, n_layers: int) -> Hyper:
        """The training values for a model of hidden size ``width`` and ``n_layers`` blocks: the preset's,
        with every field set in this config taking precedence (``source`` names the origin and overrides)."""
        fssv = self.positions == "all"
        base = (
            released_hyper(width, n_layers, self.loss, fssv, self.layer)
            if self.preset == "released"
            else width_rule(width, self.loss, fssv)
        )
        chosen = {name: getattr(self, name) for name in HYPER_FIELDS if getattr(self, name) is not None}
        if not chosen:
            return base
        return replace(base, **chosen, source=f"{base.source}; set here: {', '.join(chosen)}")

    def training_settings(self) -> dict[str, Any]:
        """The fields that shape training (what the artifact records as its config)."""
        return self.model_dump(exclude={"concept", *DATA_FIELDS, *HYPER_FIELDS})

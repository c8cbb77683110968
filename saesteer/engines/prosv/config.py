"""PrOSV's config: training settings (released Gemma-2-2B values, rescaled to the width) and data fields."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from saesteer.engines.protocol import MethodConfig
from saesteer.errors import ConfigError
from saesteer.runtime.positions import AllTokens, PromptPrefixSuffix, parse_positions

Loss = Literal["lang", "simpo"]
REFERENCE_WIDTH = 2304  # Gemma-2-2B, the width the released learning rates were tuned at
RELEASED_VECTOR_LR = 4e-2
RELEASED_FACTOR_LR = {"lang": 10.0, "simpo": 20.0}
RELEASED_BATCH_SIZE = {"lang": 12, "simpo": 6}
SIMPO_BETA, SIMPO_GAMMA, SIMPO_SCALER = 1.0, 0.0, 1.0
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
    """PrOSV settings; ``None`` rates and batch size take the released values (rescaled to the width)."""

    layer: int = Field(description="block whose output is steered")
    concept: str = Field("", description="concept description (looked up in AxBench data, or used to build data)")
    loss: Loss = Field("lang", description="lang (response cross-entropy) or simpo (RePS scaled SimPO)")
    positions: str = Field("f2+l2", description="f{p}+l{s}, f{p}, l{s}, or all (the FSSV baseline)")
    epochs: int = Field(12, ge=1, description="passes over the training examples")
    batch_size: int | None = Field(None, ge=1, description="default: 12 (lang), 6 (simpo)")
    factor_init: float = Field(4.0, gt=0, description="beta: alpha0 = beta * sqrt(hidden size)")
    vector_init: float = Field(8.0, gt=0, description="lambda: v0 ~ U(+-lambda / sqrt(hidden size))")
    factor_lr: float | None = Field(None, gt=0, description="default: released rate x sqrt(n / 2304)")
    vector_lr: float | None = Field(None, gt=0, description="default: 4e-2 x sqrt(2304 / n)")
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

    def rates(self, width: int) -> tuple[float, float]:
        """(eta_alpha, eta_v) at hidden size ``width``: the released rates moved by the scaling rule."""
        ratio = width / REFERENCE_WIDTH
        factor_lr = RELEASED_FACTOR_LR[self.loss] * math.sqrt(ratio) if self.factor_lr is None else self.factor_lr
        vector_lr = RELEASED_VECTOR_LR / math.sqrt(ratio) if self.vector_lr is None else self.vector_lr
        return factor_lr, vector_lr

    @property
    def effective_batch_size(self) -> int:
        return RELEASED_BATCH_SIZE[self.loss] if self.batch_size is None else self.batch_size

    def training_settings(self) -> dict[str, Any]:
        """The fields that shape training (what the artifact records as its config)."""
        return self.model_dump(exclude={"concept", *DATA_FIELDS})

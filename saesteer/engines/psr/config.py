"""PSR's config: probe layers, objective, optimiser, triplet generation and filtering, token span and strength
calibration. Defaults are the paper's persona-vector settings (reference code, per the verified port): span QR
for a trait (R for an AxBench concept), regulariser weight 0.1 with the MSE normalised by its initial dev value,
AdamW lr 1e-3 / weight decay 1e-6, 15 epochs (mse) / 7 (ll), y' sampled, alpha binary-searched to a coherence
target. The paper's IFEval runs differ: reg_weight 0, span R, objective ll, a fixed alpha of 1."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from saesteer.engines.protocol import MethodConfig

Objective = Literal["mse", "ll"]
Span = Literal["R", "QR"]
DEFAULT_EPOCHS = {"mse": 15, "ll": 7}
JUDGE_SPEC = re.compile(r"^(proxy|hf:.+|openai:[^@]+@.+)$")
DATA_FIELDS = ("trait", "concept", "data", "n_prompts")


class PSRConfig(MethodConfig):
    """What to train: ``layers`` (one = S-PSR, several or 'all' = A-PSR), objective and optimiser settings,
    how the triplets are generated, and how alpha is set."""

    layers: Literal["all"] | list[int] = Field(description="one layer (S-PSR), 'all' or L1,L2,... (A-PSR)")
    objective: Objective = Field("mse", description="mse (prompted activations) or ll (prompted responses)")
    epochs: int | None = Field(None, ge=1, description="default 15 (mse) / 7 (ll)")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate (linear decay to 0)")
    weight_decay: float = Field(1e-6, ge=0, description="AdamW weight decay")
    batch_size: int = Field(4, ge=1, description="triplets per step")
    reg_weight: float = Field(
        0.1, ge=0, description="weight of max(0, 1 - sum lambda): 0.1 (persona, the paper), 0 = off (its IFEval)"
    )
    span: Span | None = Field(
        None,
        description="tokens steered and supervised: R (last prompt token + response; AxBench, IFEval) or QR "
        "(question + response, the instruction as the system turn of x'; persona). Default: QR with a trait, else R",
    )
    dev_fraction: float = Field(0.2, ge=0, lt=1, description="share of triplets held out (normalisation, alpha)")
    seed: int = Field(0, description="seed of the split, the init, the batch order and sampling")
    trait: str | None = Field(None, description="trait instruction (R: after the prompt; QR: the system turn)")
    concept: str | None = Field(None, description="concept: the instruction becomes 'Mention {concept} ...'")
    data: str | None = Field(None, description="base prompts (.json list or .jsonl)")
    n_prompts: int | None = Field(None, ge=1, description="use the first N prompts (default: all)")
    max_new_tokens: int = Field(48, ge=1, description="length of the generated responses y'")
    sample: bool = Field(True, description="sample y' (seeded, temperature 1) as the paper does; --no-sample: greedy")
    judge: str | None = Field(
        None,
        description="attribute + coherence judge of the triplets: proxy, hf:MODEL or openai:MODEL@BASE_URL "
        "(attribute = concept rating / 2, coherence = fluency rating / 2)",
    )
    filter_triplets: bool = Field(
        True, description="with a judge: drop triplets scoring < 0.5 on either, label = attribute score (paper)"
    )
    alpha: float | None = Field(None, description="fixed alpha (skips the binary search)")
    coherence_target: Literal["prompt"] | float = Field(
        "prompt", description="'prompt' (the prompted answers' own coherence) or a number in the judge's units"
    )

    @field_validator("layers")
    @classmethod
    def _layers(cls, value: Any) -> Any:
        if value != "all" and not value:
            raise ValueError("PSR needs at least one layer. Fix: pass layers=[L] (S-PSR) or 'all' (A-PSR).")
        return value

    @field_validator("judge")
    @classmethod
    def _judge(cls, value: str | None) -> str | None:
        if value is not None and not JUDGE_SPEC.match(value):
            raise ValueError(f"judge {value!r} is not a judge spec. Fix: use proxy, hf:MODEL or openai:MODEL@BASE_URL")
        return value

    @model_validator(mode="after")
    def _one_instruction(self) -> PSRConfig:
        if self.trait is not None and self.concept is not None:
            raise ValueError("give either trait or concept, not both")
        return self

    @property
    def n_epochs(self) -> int:
        return self.epochs or DEFAULT_EPOCHS[self.objective]

    @property
    def token_span(self) -> Span:
        """The span in use: as set, else QR for a trait (persona) and R otherwise (an AxBench concept)."""
        return self.span or ("QR" if self.trait is not None else "R")

    def to_dict(self) -> dict[str, Any]:
        """The training settings an artifact records (epochs and span resolved)."""
        found = self.model_dump(exclude=set(DATA_FIELDS))
        return {**found, "epochs": self.n_epochs, "span": self.token_span}

"""PSR's config: probe layers, objective, optimiser, triplet generation and strength calibration."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from saesteer.engines.protocol import MethodConfig

Objective = Literal["mse", "ll"]
DEFAULT_EPOCHS = {"mse": 15, "ll": 7}
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
    reg_weight: float = Field(0.0, ge=0, description="weight of max(0, 1 - sum lambda); 0 = off")
    dev_fraction: float = Field(0.2, ge=0, lt=1, description="share of triplets held out (normalisation, alpha)")
    seed: int = Field(0, description="seed of the split, the init, the batch order and sampling")
    trait: str | None = Field(None, description="trait instruction appended to each prompt")
    concept: str | None = Field(None, description="concept: the instruction becomes 'Mention {concept} ...'")
    data: str | None = Field(None, description="base prompts (.json list or .jsonl)")
    n_prompts: int | None = Field(None, ge=1, description="use the first N prompts (default: all)")
    max_new_tokens: int = Field(48, ge=1, description="length of the generated responses y'")
    sample: bool = Field(False, description="sample y' (seeded) instead of greedy decoding")
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

    @model_validator(mode="after")
    def _one_instruction(self) -> PSRConfig:
        if self.trait is not None and self.concept is not None:
            raise ValueError("give either trait or concept, not both")
        return self

    @property
    def n_epochs(self) -> int:
        return self.epochs or DEFAULT_EPOCHS[self.objective]

    def to_dict(self) -> dict[str, Any]:
        """The training settings an artifact records (epochs resolved)."""
        found = self.model_dump(exclude=set(DATA_FIELDS))
        return {**found, "epochs": self.n_epochs}

"""The method protocol: what every fitted artifact and every steering method provides.

An **artifact** is a fitted thing the runtime can apply: it knows its ``method``, the store record
``kind`` it is kept as, its model id, config, metrics, layers and width; ``interventions(alpha=...,
positions=...)`` turns it into runtime ``Intervention``s, and ``to_tensors()`` + ``state()`` /
``from_tensors(record, tensors)`` are its only persistence (``Store.save`` / ``Store.load``).

A **method** is a registered name with a typed ``Config`` (pydantic, unknown fields refused), a
``load_data(config, context)`` that resolves the config's data fields (files, tasks, SAEs in a store)
and ``fit(model, tokenizer, data, config, *, log=None, progress=True) -> Fitted``. Calibration steps
(PSR's alpha search, CorrSteer's variant P) happen inside ``fit``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict
from torch import Tensor

from saesteer.runtime.intervention import Intervention

Log = Callable[[dict[str, float]], None]


@runtime_checkable
class Artifact(Protocol):
    """A fitted, storable steering artifact."""

    method: str  # the registry name of the method that made it
    kind: ClassVar[str]  # store record kind: "vector" or "probe"
    model_id: str
    hook_point: str
    config: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def layers(self) -> list[int]: ...

    @property
    def width(self) -> int: ...

    def interventions(
        self, alpha: Any = 1.0, positions: Any = None, layer: int | None = None, hook_point: Any = None
    ) -> list[Intervention]: ...

    def to_tensors(self) -> dict[str, Tensor]: ...

    def state(self) -> dict[str, Any]:
        """JSON kept in the record next to the tensors (everything ``from_tensors`` needs besides them)."""
        ...

    @classmethod
    def from_tensors(cls, record: Any, tensors: dict[str, Tensor]) -> Artifact: ...

    def additive_vector(self) -> tuple[int, Tensor] | None:
        """(layer, alpha=1 vector) when the artifact is one constant vector at one layer, else None."""
        ...


@runtime_checkable
class Companion(Protocol):
    """A record saved with an artifact (e.g. CorrSteer's feature statistics) as ``{name}-{suffix}``."""

    suffix: str
    kind: ClassVar[str]
    model_id: str
    hook_point: str

    def to_tensors(self) -> dict[str, Tensor]: ...

    def state(self) -> dict[str, Any]: ...

    @property
    def metrics(self) -> dict[str, Any]: ...


class MethodConfig(BaseModel):
    """Base of every method's config: typed fields with descriptions; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass
class Fitted:
    """What ``fit`` returns: the artifact, records saved with it, a report for people, the data's hash, and
    ``train_prompts``: the prompt texts it was fitted on (their hashes are stored with the artifact, for the
    bench's train/test overlap guard); None lets ``train`` read them from the method's data."""

    artifact: Any
    companions: list[Any] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    data_hash: str = ""
    train_prompts: list[str] | None = None


@dataclass(frozen=True)
class DataContext:
    """What ``load_data`` may use to resolve a config's data fields."""

    model: Any
    tokenizer: Any
    store: Any = None
    progress: bool = True


@dataclass(frozen=True)
class Method:
    """A registered steering method."""

    name: str
    summary: str
    config: type[MethodConfig]
    artifact: type
    fit: Callable[..., Fitted]
    load_data: Callable[[Any, DataContext], Any]
    needs_sae: bool = False
    example: str = ""

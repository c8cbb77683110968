"""Record: one catalogued artifact and its provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["sae", "vector", "probe", "feature_stats", "eval_result", "feature_summary"]
KINDS: tuple[str, ...] = ("sae", "vector", "probe", "feature_stats", "eval_result", "feature_summary")


@dataclass
class Record:
    """Provenance of an artifact: what it is, which model/layer it belongs to, how it was made."""

    id: str
    kind: str
    name: str
    model_id: str = ""
    model_fingerprint: str = ""
    layer: int | None = None
    hook_point: str = ""
    method: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    data_hash: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    blob: str = ""
    checksum: str = ""

"""Per-sample benchmark records: one JSON line each, appended and flushed as batches finish (so an
interrupted run keeps its finished work and a rerun skips it)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from saesteer.errors import DataError

RecordKey = tuple[str, str, str, float, str, str]  # task, unit, method, factor, sample id, backend


@dataclass
class BenchRecord:
    """One (task, method, factor, sample) result. ``unit`` groups records scored together: the task name,
    or ``axbench/c{concept_id}`` for a concept; ``phase`` is "select" or "test" for AxBench instructions;
    ``backend`` generated it (hf or vllm; part of the key, so one results directory never mixes them up)."""

    task: str
    unit: str
    method: str
    factor: float
    sample_id: str
    prompt: str
    generation: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    phase: str = "test"
    n_tokens: int = 0
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    backend: str = "hf"

    @property
    def key(self) -> RecordKey:
        return (self.task, self.unit, self.method, float(self.factor), self.sample_id, self.backend)


class RecordFile:
    """``records.jsonl`` in a results directory: read what is there, append new records durably."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def read(self) -> list[BenchRecord]:
        if not self.path.exists():
            return []
        lines = [line for line in self.path.read_text(encoding="utf-8").split("\n") if line.strip()]
        records = []
        for number, line in enumerate(lines, start=1):
            try:
                records.append(BenchRecord(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                if number == len(lines):
                    break  # a line cut by an interrupted write: dropped, its batch is redone
                raise DataError(
                    f"{self.path}: record {number} is not a benchmark record ({exc}). "
                    "Fix: delete the file to start over."
                ) from exc
        return records

    def _drop_partial_line(self) -> None:
        text = self.path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            self.path.write_text(text[: text.rfind("\n") + 1], encoding="utf-8")

    def done(self) -> set[RecordKey]:
        return {r.key for r in self.read()}

    def append(self, records: Iterable[BenchRecord]) -> None:
        lines = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records)
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._drop_partial_line()
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

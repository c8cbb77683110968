"""Store: a directory with ``catalog.sqlite`` and ``blobs/*.safetensors``; writes are atomic."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from torch import Tensor

from saesteer.errors import StoreError
from saesteer.store.blobs import read_blob, write_blob
from saesteer.store.catalog import Catalog
from saesteer.store.records import KINDS, Record


def data_hash(rows: Any) -> str:
    """A stable short hash of the data an artifact was fitted on (any JSON-serialisable rows)."""
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Store:
    """Embedded feature store rooted at ``root`` (created on first use)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(
                f"Store path {self.root} is a file. Fix: pass a directory path (it is created if missing)."
            )
        try:
            (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create store at {self.root}: {exc}. Fix: choose a writable directory.") from exc
        self.catalog = Catalog(self.root / "catalog.sqlite")

    def put(self, kind: str, name: str, tensors: dict[str, Tensor], **provenance: Any) -> Record:
        """Write a blob then its catalog row; on any failure neither is left behind."""
        if kind not in KINDS:
            raise StoreError(f"Unknown record kind {kind!r}. Fix: use one of {', '.join(KINDS)}.")
        if not name:
            raise StoreError("A record needs a non-empty name. Fix: pass name='...'.")
        record_id = uuid.uuid4().hex
        blob = f"blobs/{record_id}.safetensors"
        path = self.root / blob
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"Store {self.root} is read-only. Fix: use a writable directory or fix permissions.")
        checksum = write_blob(path, tensors, metadata={"kind": kind, "name": name})
        record = Record(
            id=record_id,
            kind=kind,
            name=name,
            created=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            blob=blob,
            checksum=checksum,
            **provenance,
        )
        try:
            self.catalog.insert(record)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return record

    def get(self, name: str, kind: str | None = None) -> Record:
        """The latest record called ``name`` (or with that id)."""
        found = self.catalog.query(name=name, kind=kind) or self.catalog.query(id=name, kind=kind)
        if not found:
            known = sorted({r.name for r in self.catalog.query(kind=kind)})
            raise StoreError(
                f"No {kind or 'record'} named {name!r} in {self.root}. "
                f"Fix: use one of {known or '(store is empty)'} or fit it first."
            )
        return found[0]

    def find(self, **filters: Any) -> list[Record]:
        """Records matching field values, e.g. ``find(kind='vector', model_id=M, layer=8)``; newest first."""
        return self.catalog.query(**filters)

    def tensors(self, record: Record) -> dict[str, Tensor]:
        return read_blob(self.root / record.blob, record.checksum)

    def delete(self, name_or_id: str) -> Record:
        """Remove the catalog row first (so no record points at a missing blob), then the blob."""
        record = self.get(name_or_id)
        self.catalog.delete(record.id)
        (self.root / record.blob).unlink(missing_ok=True)
        return record

    # Typed helpers for the artifacts engines produce.
    def save_vector(self, name: str, vector: Any, *, data_hash: str = "", model_fingerprint: str = "") -> Record:
        return self.put(
            "vector",
            name,
            {"vector": vector.vector},
            model_id=vector.model_id,
            model_fingerprint=model_fingerprint,
            layer=vector.layer,
            hook_point=vector.hook_point,
            method=vector.method,
            config={**vector.config, "positions": vector.positions},
            data_hash=data_hash,
            metrics=vector.metrics,
        )

    def load_vector(self, name: str) -> Any:
        from saesteer.vectors import SteeringVector

        record = self.get(name, kind="vector")
        config = dict(record.config)
        positions = config.pop("positions", "after_prompt")
        return SteeringVector(
            vector=self.tensors(record)["vector"],
            layer=int(record.layer or 0),
            hook_point=record.hook_point or "resid_post",  # type: ignore[arg-type]
            positions=positions,
            method=record.method,
            model_id=record.model_id,
            config=config,
            metrics=record.metrics,
        )

"""Store: a directory with ``catalog.sqlite`` and ``blobs/*.safetensors``; writes are atomic."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from torch import Tensor

from saesteer.errors import StoreError
from saesteer.store.blobs import copy_blob, read_blob, write_blob
from saesteer.store.catalog import Catalog
from saesteer.store.records import KINDS, Record


def check_artifact_fits(artifact: Any, model: Any, name: str = "") -> None:
    """The one width/layer check of an artifact against a model (typed errors naming the fix)."""
    from saesteer.errors import VectorError
    from saesteer.models.layers import check_layer, hidden_size

    width = hidden_size(model)
    if artifact.width != width:
        raise VectorError(
            f"{artifact.method} artifact {name or ''!r} has width {artifact.width} but the model's hidden size is "
            f"{width}. Fix: load it with the model it was fitted on ({artifact.model_id or 'see saesteer store show'})."
        )
    for layer in artifact.layers:
        check_layer(model, layer)


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

    def find(self, config: dict[str, Any] | None = None, **filters: Any) -> list[Record]:
        """Records matching field values, e.g. ``find(kind='vector', model_id=M, layer=8)``, and config
        entries, e.g. ``find(kind='feature_stats', config={'task': 'mmlu'})``; newest first."""
        return self.catalog.query(config, **filters)

    def verify(self) -> list[str]:
        """Problems found: records whose blob is missing or fails its checksum (empty list = healthy)."""
        problems = []
        for record in self.catalog.query():
            try:
                self.tensors(record)
            except StoreError as exc:
                problems.append(f"{record.kind} {record.name!r} ({record.id[:8]}): {exc}")
        return problems

    def gc(self) -> list[Path]:
        """Remove blob files no record points to (left by writes interrupted before their catalog row)."""
        known = {Path(r.blob).name for r in self.catalog.query()}
        orphans = [p for p in (self.root / "blobs").iterdir() if p.name not in known]
        for path in orphans:
            path.unlink(missing_ok=True)
        return orphans

    def export(self, names: list[str] | None, out_dir: str | os.PathLike[str]) -> list[Record]:
        """Copy the latest record of each name (all records if ``names`` is None) into a bundle
        directory: ``records.jsonl`` plus ``blobs/``; checksums are verified on the way out."""
        records = [self.get(n) for n in names] if names else self.catalog.query()
        out = Path(out_dir)
        (out / "blobs").mkdir(parents=True, exist_ok=True)
        for record in records:
            copy_blob(self.root / record.blob, out / record.blob, record.checksum)
        lines = [json.dumps(asdict(r), sort_keys=True) for r in records]
        (out / "records.jsonl").write_text("\n".join(lines) + "\n")
        return records

    def import_bundle(self, bundle: str | os.PathLike[str]) -> list[Record]:
        """Add the records of an exported bundle (verifying every blob first); known ids are skipped."""
        source = Path(bundle)
        listing = source / "records.jsonl"
        if not listing.is_file():
            raise StoreError(
                f"{source} has no records.jsonl. Fix: pass a directory written by 'saesteer store export'."
            )
        try:
            incoming = [Record(**json.loads(line)) for line in listing.read_text().split("\n") if line.strip()]
        except (json.JSONDecodeError, TypeError) as exc:
            raise StoreError(f"{listing} is malformed ({exc}). Fix: re-export the bundle.") from exc
        known = self.catalog.ids()
        added = []
        for record in incoming:
            if record.id in known:
                continue
            if Path(record.blob).name != f"{record.id}.safetensors":
                raise StoreError(f"Record {record.id} points at {record.blob!r}. Fix: re-export the bundle.")
            copy_blob(source / record.blob, self.root / record.blob, record.checksum)
            try:
                self.catalog.insert(record)
            except BaseException:
                (self.root / record.blob).unlink(missing_ok=True)
                raise
            added.append(record)
        return added

    def tensors(self, record: Record) -> dict[str, Tensor]:
        return read_blob(self.root / record.blob, record.checksum)

    def delete(self, name_or_id: str) -> Record:
        """Remove the catalog row first (so no record points at a missing blob), then the blob."""
        record = self.get(name_or_id)
        self.catalog.delete(record.id)
        (self.root / record.blob).unlink(missing_ok=True)
        return record

    def save(
        self,
        name: str,
        artifact: Any,
        *,
        companions: Sequence[Any] = (),
        data_hash: str = "",
        model_fingerprint: str = "",
    ) -> Record:
        """Keep any artifact of the method protocol (and its companions, saved first as ``{name}-{suffix}``)."""
        for companion in companions:
            self.put(
                companion.kind,
                f"{name}-{companion.suffix}",
                companion.to_tensors(),
                model_id=companion.model_id,
                model_fingerprint=model_fingerprint,
                hook_point=companion.hook_point,
                method=f"{artifact.method}-{companion.suffix}",
                config=companion.state(),
                data_hash=data_hash,
                metrics=companion.metrics,
            )
        layers = list(artifact.layers)
        state = artifact.state()
        if companions:
            state = {**state, "companions": [f"{name}-{c.suffix}" for c in companions]}
        return self.put(
            artifact.kind,
            name,
            artifact.to_tensors(),
            model_id=artifact.model_id,
            model_fingerprint=model_fingerprint,
            layer=layers[0] if len(layers) == 1 else None,
            hook_point=artifact.hook_point,
            method=artifact.method,
            config=state,
            data_hash=data_hash,
            metrics=artifact.metrics,
        )

    def load(self, name: str, model: Any = None, *, kind: str | None = None) -> Any:
        """The artifact stored as ``name`` (a steering artifact, an SAE or feature statistics), rebuilt by
        its method's artifact type; with ``model``, its width and layers are checked against that model."""
        record = self.get(name, kind=kind)
        if record.kind == "sae":
            from saesteer.saes import check_sae_fits
            from saesteer.saes.loading import sae_from_tensors

            sae = self._rebuild(record, lambda tensors: sae_from_tensors(record.config["sae_cfg"], tensors))
            if model is not None:
                check_sae_fits(model, sae)
            return sae
        if record.kind == "feature_stats":
            from saesteer.stats import FeatureStats

            return self._rebuild(record, FeatureStats.from_tensors)
        from saesteer.engines.registry import artifact_type

        cls = artifact_type(record.method)
        if cls is None or record.kind != getattr(cls, "kind", None):
            raise StoreError(
                f"{name!r} is a {record.kind} record of method {record.method!r}, which no registered method "
                "can steer with. Fix: pick a vector or probe record (saesteer store ls), or register its method."
            )
        artifact = self._rebuild(record, lambda tensors: cls.from_tensors(record, tensors))
        if model is not None:
            check_artifact_fits(artifact, model, name)
        return artifact

    def _rebuild(self, record: Record, build: Any) -> Any:
        tensors = self.tensors(record)
        try:
            return build(tensors)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise StoreError(
                f"Record {record.name!r} ({record.kind}, method {record.method or '-'}) cannot be rebuilt from "
                f"its blob and config ({type(exc).__name__}: {exc}). Fix: refit it, or restore the store from "
                "a bundle (saesteer store import)."
            ) from exc

    def save_sae(
        self,
        name: str,
        sae: Any,
        *,
        model_id: str,
        layer: int,
        hook_point: str = "resid_post",
        metrics: dict[str, Any] | None = None,
        model_fingerprint: str = "",
        data_hash: str = "",
    ) -> Record:
        """Keep an sae-lens SAE: its inference weights as the blob, its sae-lens cfg in the record."""
        state = {k: v.detach().float() for k, v in sae.state_dict().items()}
        cfg = sae.cfg.to_dict()
        cfg["device"] = "cpu"
        return self.put(
            "sae",
            name,
            state,
            model_id=model_id,
            model_fingerprint=model_fingerprint,
            layer=layer,
            hook_point=hook_point,
            method=f"sae-lens:{cfg.get('architecture', '')}",
            config={"sae_cfg": cfg},
            data_hash=data_hash,
            metrics=metrics or {},
        )

    def load_sae(self, name: str, model: Any = None) -> Any:
        """``load(name, model, kind='sae')``: an sae-lens SAE."""
        return self.load(name, model, kind="sae")

    def find_sae(self, model_id: str, layer: int, hook_point: str = "resid_post") -> Record:
        """The latest SAE record for (model, layer, hook point)."""
        found = self.find(kind="sae", model_id=model_id, layer=layer, hook_point=hook_point)
        if not found:
            raise StoreError(
                f"No SAE for model {model_id!r}, layer {layer}, {hook_point} in {self.root}. "
                "Fix: train one (saesteer sae train) or register one (saesteer sae add)."
            )
        return found[0]

    def save_feature_stats(
        self,
        name: str,
        stats: Any,
        *,
        model_id: str,
        task: str,
        config: dict[str, Any] | None = None,
        hook_point: str = "resid_pre",
        model_fingerprint: str = "",
        data_hash: str = "",
        metrics: dict[str, Any] | None = None,
    ) -> Record:
        """Keep a FeatureStats (all its running sums, so it can still be merged) for a task."""
        return self.put(
            "feature_stats",
            name,
            stats.to_tensors(),
            model_id=model_id,
            model_fingerprint=model_fingerprint,
            hook_point=hook_point,
            method="corrsteer-stats",
            config={**(config or {}), "task": task, "layers": list(stats.layers)},
            data_hash=data_hash,
            metrics={"n": stats.n, "n_pos": stats.n_pos, **(metrics or {})},
        )

    def load_feature_stats(self, name: str) -> Any:
        """``load(name, kind='feature_stats')``: a FeatureStats with all its running sums."""
        return self.load(name, kind="feature_stats")

    def top_features(self, task: str, model_id: str, layer: int, k: int = 20) -> list[tuple[int, float]]:
        """Top-k positively correlated features of ``layer`` from the latest statistics for (task, model)."""
        from saesteer.stats import FeatureStats

        for record in self.find(kind="feature_stats", model_id=model_id, config={"task": task}):
            if layer in record.config.get("layers", []):
                stats = FeatureStats.from_tensors(self.tensors(record))
                return stats.top_features(k)[layer]
        raise StoreError(
            f"No feature statistics for task {task!r}, model {model_id!r}, layer {layer} in {self.root}. "
            "Fix: harvest them first (saesteer train corrsteer)."
        )

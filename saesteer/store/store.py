"""Store: a directory with ``catalog.sqlite`` and ``blobs/*.safetensors``; writes are atomic."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from torch import Tensor

from saesteer.errors import StoreError
from saesteer.store.blobs import blob_metadata, parse_blob, read_verified, write_blob, write_bytes
from saesteer.store.catalog import Catalog, normalised, record_problem
from saesteer.store.records import KINDS, Record

TRAIN_HASHES = "_train_hashes"  # blob key of the artifact's training-prompt hashes (int64; not the artifact's)


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
    """Embedded feature store rooted at ``root`` (created on first use).

    Opening checks the store's layout (a regular ``catalog.sqlite`` with a sane WAL, a real ``blobs/``
    directory); reads check each blob (a regular file inside ``blobs/``, its sha256, and the provenance it
    was written with against its catalog row). Any damage is a StoreError naming it and its fix."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(
                f"Store path {self.root} is a file. Fix: pass a directory path (it is created if missing)."
            )
        path = self.root / "catalog.sqlite"
        fresh = not os.path.lexists(path)
        if fresh:
            self._check_nothing_to_lose(path)
        try:
            if not os.path.lexists(self.root / "blobs"):
                (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create store at {self.root}: {exc}. Fix: choose a writable directory.") from exc
        self._check_blobs_dir()
        self.catalog = Catalog(path, create=fresh)

    def _check_nothing_to_lose(self, path: Path) -> None:
        """A missing catalog is only created afresh where no blob or WAL would be orphaned by it."""
        blobs = self.root / "blobs"
        held = list(blobs.glob("*.safetensors")) if blobs.is_dir() and not blobs.is_symlink() else []
        wal = os.path.lexists(f"{path}-wal")
        if (held or wal) and not os.path.lexists(path):  # (re-checked: another process may just have made it)
            what = f"{len(held)} blob(s)" if held else "a write-ahead log"
            raise StoreError(
                f"The catalog {path} is missing but the store still holds {what}. Fix: restore catalog.sqlite "
                "from a backup, or move the store aside and import your exported bundles into a new one "
                "(saesteer store --store NEW import BUNDLE)."
            )

    def _check_blobs_dir(self) -> None:
        blobs = self.root / "blobs"
        try:
            mode = blobs.lstat().st_mode
        except OSError as exc:
            raise StoreError(
                f"The blob directory {blobs} cannot be examined ({exc.strerror}). Fix: restore the store's blobs/ "
                "directory from a backup, or import your exported bundles into a new store."
            ) from exc
        if stat.S_ISDIR(mode):
            return
        kind = f"a symbolic link (to {os.readlink(blobs)})" if stat.S_ISLNK(mode) else "not a directory"
        raise StoreError(
            f"The blob directory {blobs} is {kind}; a store keeps its blobs in a directory of its own. Fix: put the "
            "blobs directory itself there (a store never links elsewhere), or restore it from a backup or bundle "
            "(saesteer store --store NEW import BUNDLE)."
        )

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
        self._check_blobs_dir()
        record = Record(
            id=record_id,
            kind=kind,
            name=name,
            created=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            blob=blob,
            **provenance,
        )
        metadata = {"kind": kind, "name": name, "record": _provenance(record)}
        record.checksum = write_blob(path, tensors, metadata=metadata)
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
            raise self._missing(name, kind)
        return found[0]

    def _missing(self, name: str, kind: str | None) -> StoreError:
        known = sorted({r.name for r in self.catalog.query(kind=kind)})
        return StoreError(
            f"No {kind or 'record'} named {name!r} in {self.root}. "
            f"Fix: use one of {known or '(store is empty)'} or fit it first."
        )

    def find(self, config: dict[str, Any] | None = None, **filters: Any) -> list[Record]:
        """Records matching field values, e.g. ``find(kind='vector', model_id=M, layer=8)``, and config
        entries, e.g. ``find(kind='feature_stats', config={'task': 'mmlu'})``; newest first."""
        return self.catalog.query(config, **filters)

    def verify(self) -> list[str]:
        """Problems found (empty list = healthy): catalog corruption, malformed rows, and records whose blob is
        missing, not a regular file inside blobs/, fails its checksum or disagrees with its row."""
        problems = self.catalog.integrity()
        if problems:
            return problems  # rows of a corrupt catalog cannot be trusted
        records, problems = self.catalog.query_checked()
        problems = [_without_fix(p) for p in problems]
        for record in records:
            try:
                self.tensors(record)
            except StoreError as exc:
                problems.append(_without_fix(str(exc)))
        return problems

    def gc(self) -> list[Path]:
        """Remove blob files no record points to (left by writes interrupted before their catalog row)."""
        known = {Path(blob).name for blob in self.catalog.blobs()}
        orphans = [p for p in (self.root / "blobs").iterdir() if p.name not in known]
        for path in orphans:
            _remove(path)
        return orphans

    def export(self, names: list[str] | None, out_dir: str | os.PathLike[str]) -> list[Record]:
        """Copy the latest record of each name (all records if ``names`` is None) into a bundle
        directory: ``records.jsonl`` plus ``blobs/``; every blob is verified on the way out, and on any
        failure the blobs this call added are removed again (``records.jsonl`` is written last, atomically)."""
        records = [self.get(n) for n in names] if names else self.catalog.query()
        out = Path(out_dir)
        written: list[Path] = []
        try:
            for record in records:
                payload = self._read(record)[0]
                target = out / record.blob
                if not os.path.lexists(target):
                    written.append(target)
                write_bytes(target, payload)
            lines = [json.dumps(asdict(r), sort_keys=True) for r in records]
            write_bytes(out / "records.jsonl", ("\n".join(lines) + "\n").encode())
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return records

    def import_bundle(self, bundle: str | os.PathLike[str]) -> list[Record]:
        """Add the records of an exported bundle; every record and blob is checked before the first is added,
        and known ids are skipped."""
        source = Path(bundle)
        listing = source / "records.jsonl"
        if not listing.is_file():
            raise StoreError(
                f"{source} has no records.jsonl. Fix: pass a directory written by 'saesteer store export'."
            )
        try:
            incoming = [Record(**json.loads(line)) for line in listing.read_text().split("\n") if line.strip()]
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{listing} is malformed ({exc}). Fix: re-export the bundle.") from exc
        for record in incoming:
            problem = record_problem(record)
            if problem:
                raise StoreError(f"Record {record.id!r} of {listing} is malformed: {problem}. Fix: re-export it.")
        known = self.catalog.ids()
        new = list({r.id: r for r in incoming if r.id not in known}.values())
        for record in new:
            self._checked(record, read_verified(source / record.blob, record.checksum), source / record.blob)
        added = []
        for record in new:
            path = self.root / record.blob
            payload = read_verified(source / record.blob, record.checksum)
            write_bytes(path, payload)
            try:
                self.catalog.insert(record)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            added.append(record)
        return added

    def tensors(self, record: Record) -> dict[str, Tensor]:
        """The tensors of ``record``'s blob, verified (see the class docstring)."""
        return self._read(record)[1]

    def _read(self, record: Record) -> tuple[bytes, dict[str, Tensor]]:
        """The verified bytes and tensors of a record's blob; any damage names the record and its fix."""
        fix = (
            f"Fix: remove it (saesteer store --store {self.root} rm {record.id}) and refit it, or restore it "
            f"from a bundle (saesteer store --store {self.root} import BUNDLE)."
        )
        problem = record_problem(record)
        if problem:
            raise StoreError(f"Record {record.id!r} ({record.name!r}) is malformed: {problem}. {fix}")
        path = self.root / record.blob
        self._check_blobs_dir()
        try:
            payload = read_verified(path, record.checksum, follow_links=False)
            return payload, self._checked(record, payload, path)
        except StoreError as exc:
            what = f"{record.kind} {record.name!r} ({record.id[:8]})"
            raise StoreError(f"{what}: {_without_fix(str(exc))} {fix}") from exc

    @staticmethod
    def _checked(record: Record, payload: bytes, path: Path) -> dict[str, Tensor]:
        """Parse a verified payload; blobs written with their provenance must agree with the record."""
        tensors = parse_blob(payload, path)
        written = blob_metadata(payload).get("record")
        if written is not None and written != _provenance(record):
            raise StoreError(
                f"Its catalog row disagrees with the provenance its blob {path} was written with (the row was "
                "damaged or edited). Fix: restore the record from a bundle, or remove it and refit it."
            )
        return tensors

    def delete(self, name_or_id: str) -> Record:
        """Remove the latest record so named (or with that id), a malformed or damaged one too: the catalog row
        first (so no record points at a missing blob), then its blob. Returns the record (only its id, kind,
        name and blob if its row was malformed)."""
        raw = self.catalog.latest_raw(name_or_id)
        if raw is None:
            raise self._missing(name_or_id, None)
        record_id, kind, name, blob = raw
        try:
            record = self.get(record_id)
        except StoreError:
            record = Record(id=record_id, kind=kind, name=name, blob=blob)
        self.catalog.delete(record_id)
        if blob == f"blobs/{record_id}.safetensors":  # never a path a malformed row points elsewhere
            _remove(self.root / blob)
        return record

    def save(
        self,
        name: str,
        artifact: Any,
        *,
        companions: Sequence[Any] = (),
        data_hash: str = "",
        model_fingerprint: str = "",
        train_hashes: Tensor | None = None,
    ) -> Record:
        """Keep any artifact of the method protocol (and its companions, saved first as ``{name}-{suffix}``);
        ``train_hashes`` (its training prompts' hashes) go into its blob, read back by ``train_hashes``."""
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
        tensors = artifact.to_tensors()
        return self.put(
            artifact.kind,
            name,
            tensors if train_hashes is None else {**tensors, TRAIN_HASHES: train_hashes},
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

        cls: Any = artifact_type(record.method)
        if cls is None or record.kind != getattr(cls, "kind", None):
            raise StoreError(
                f"{name!r} is a {record.kind} record of method {record.method!r}, which no registered method "
                "can steer with. Fix: pick a vector or probe record (saesteer store ls), or register its method."
            )
        artifact = self._rebuild(record, lambda tensors: cls.from_tensors(record, tensors))
        if model is not None:
            check_artifact_fits(artifact, model, name)
        return artifact

    def train_hashes(self, name: str) -> Tensor | None:
        """The training-prompt hashes saved with artifact ``name``; None for one saved without them."""
        return self.tensors(self.get(name)).get(TRAIN_HASHES)

    def _rebuild(self, record: Record, build: Any) -> Any:
        tensors = {key: value for key, value in self.tensors(record).items() if key != TRAIN_HASHES}
        try:
            return build(tensors)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError, RuntimeError) as exc:
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
                stats = self._rebuild(record, FeatureStats.from_tensors)
                return stats.top_features(k)[layer]
        raise StoreError(
            f"No feature statistics for task {task!r}, model {model_id!r}, layer {layer} in {self.root}. "
            "Fix: harvest them first (saesteer train corrsteer)."
        )


def _provenance(record: Record) -> str:
    """Canonical JSON of everything a record says except its checksum (kept in its blob's metadata)."""
    fields = normalised({k: v for k, v in asdict(record).items() if k != "checksum"})
    return json.dumps(fields, sort_keys=True)


def _without_fix(message: str) -> str:
    return message.split(" Fix: ")[0]


def _remove(path: Path) -> None:
    """Delete a blob path whatever it became (a file, a link, a directory); absent is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)

"""The SQLite catalog of a store: one row per record, written in single transactions."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from saesteer.errors import StoreError
from saesteer.store.records import Record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    model_id TEXT NOT NULL DEFAULT '',
    model_fingerprint TEXT NOT NULL DEFAULT '',
    layer INTEGER,
    hook_point TEXT NOT NULL DEFAULT '',
    method TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL DEFAULT '{}',
    data_hash TEXT NOT NULL DEFAULT '',
    metrics TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL,
    blob TEXT NOT NULL DEFAULT '',
    checksum TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS records_name ON records (name, created);
CREATE INDEX IF NOT EXISTS records_lookup ON records (kind, model_id, layer, hook_point);
"""
_JSON_FIELDS = ("config", "metrics")
_COLUMNS = [f.name for f in fields(Record)]


class Catalog:
    """Thin typed layer over ``catalog.sqlite``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")  # concurrent readers + one writer, no lost records
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"The SQLite catalog {self.path} is not usable ({exc}). Fix: check it is a saesteer store not "
                "locked by another program, point the store elsewhere, or restore the catalog from a backup."
            ) from exc
        finally:
            db.close()

    def ids(self) -> set[str]:
        with self._connect() as db:
            return {row[0] for row in db.execute("SELECT id FROM records")}

    def insert(self, record: Record) -> None:
        row = asdict(record)
        for key in _JSON_FIELDS:
            row[key] = json.dumps(row[key], sort_keys=True, default=str)
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._connect() as db:
            db.execute(
                f"INSERT INTO records ({', '.join(_COLUMNS)}) VALUES ({placeholders})", [row[c] for c in _COLUMNS]
            )

    def delete(self, record_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM records WHERE id = ?", (record_id,))

    def query(self, config: dict[str, Any] | None = None, **filters: Any) -> list[Record]:
        """Records matching every given column value and config entry (None values are ignored), newest first."""
        clauses, values = [], []
        for column, value in filters.items():
            if value is None:
                continue
            if column not in _COLUMNS:
                raise StoreError(f"Unknown record field {column!r}. Fix: use one of {', '.join(_COLUMNS)}.")
            clauses.append(f"{column} = ?")
            values.append(value)
        for key, value in (config or {}).items():
            if not key.replace("_", "").isalnum():
                raise StoreError(f"Config key {key!r} must be alphanumeric. Fix: query a plain key such as 'task'.")
            clauses.append(f"json_extract(config, '$.{key}') = ?")
            values.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM records {where} ORDER BY created DESC, rowid DESC", values
            )
            return [self._to_record(row) for row in rows.fetchall()]

    @staticmethod
    def _to_record(row: tuple[Any, ...]) -> Record:
        data = dict(zip(_COLUMNS, row, strict=True))
        for key in _JSON_FIELDS:
            data[key] = json.loads(data[key])
        return Record(**data)

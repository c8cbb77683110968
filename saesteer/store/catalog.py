"""The SQLite catalog of a store: one row per record, written in single transactions.

Before every connection the catalog file and its WAL/SHM side files are checked (regular files, not links,
a WAL with a valid header), so a damaged catalog is a StoreError naming the damage, never a raw sqlite3
error, a hang on a FIFO, or records silently dropped with a garbage WAL.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from saesteer.errors import StoreError
from saesteer.store.records import KINDS, Record

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
_WAL_MAGIC = {0x377F0682: "<", 0x377F0683: ">"}  # checksum byte order of the WAL header
_WAL_VERSION = 3007000
_CHECKSUM_MISMATCH = "header checksum mismatch"


def _fix(path: Path) -> str:
    root = path.parent
    return (
        f"Fix: restore {path.name} from a backup, or import your exported bundles into a new store "
        f"(saesteer store --store NEW import BUNDLE); saesteer store --store {root} verify lists what is damaged."
    )


def normalised(value: Any) -> Any:
    """``value`` as the catalog gives it back (JSON round trip), so stored and re-read rows compare equal."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


class Catalog:
    """Thin typed layer over ``catalog.sqlite``."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        """Open the catalog at ``path``; with ``create``, make it (atomically) if it does not exist."""
        self.path = path
        if create and not os.path.lexists(path):
            self._create()
        with self._connect() as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(records)")}
            if not set(_COLUMNS) <= columns:
                raise StoreError(
                    f"{path} is an SQLite database but not a saesteer catalog (no records table with the columns "
                    f"{', '.join(_COLUMNS)}). Fix: point --store at a saesteer store directory, or {_fix(path)[5:]}"
                )

    def _create(self) -> None:
        """Build the schema in a temp file and link it into place: a catalog is never seen half-made."""
        tmp = self.path.with_name(f".tmp-{os.getpid()}-{time.monotonic_ns()}-{self.path.name}")
        try:
            db = sqlite3.connect(tmp)
            try:
                db.execute("PRAGMA journal_mode=WAL")  # concurrent readers + one writer, no lost records
                db.executescript(_SCHEMA)
                db.commit()
            finally:
                db.close()
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
                os.link(tmp, self.path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"Cannot create the catalog {self.path} ({exc}). Fix: choose a writable directory on a local disk."
            ) from exc
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{tmp}{suffix}").unlink(missing_ok=True)

    def check_files(self) -> None:
        """Raise StoreError if the catalog file or its WAL/SHM side files are damaged."""
        _check_regular(self.path, "catalog", missing_ok=False)
        if self.path.stat().st_size == 0:  # a catalog is created whole (see _create), so this lost its records
            raise StoreError(f"The catalog {self.path} is empty (0 bytes): its records are lost. {_fix(self.path)}")
        # the SHM file's content is an index SQLite rebuilds from the WAL when it is stale or garbage
        _check_regular(Path(f"{self.path}-shm"), "catalog shared-memory file", missing_ok=True)
        wal = Path(f"{self.path}-wal")
        if _check_regular(wal, "catalog write-ahead log", missing_ok=True):
            problem = _wal_problem(wal)
            if problem == _CHECKSUM_MISMATCH:  # maybe a header a live writer is rewriting: valid a moment later
                time.sleep(0.05)
                problem = _wal_problem(wal)
            if problem is None:
                return
            raise StoreError(
                f"The catalog write-ahead log {wal} is garbage ({problem}); SQLite would silently drop the records "
                f"it holds. Fix: if no saesteer process uses the store, move {wal.name} and "
                f"{self.path.name}-shm away (records written since the last checkpoint are lost) or restore the "
                "store from a bundle (saesteer store --store NEW import BUNDLE)."
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.check_files()
        try:
            db = sqlite3.connect(f"file:{quote(str(self.path))}?mode=rw", uri=True, timeout=30)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # (text that is not UTF-8: a damaged page)
            raise self._error(exc) from exc
        finally:
            db.close()

    def _error(self, exc: sqlite3.Error | UnicodeDecodeError) -> StoreError:
        text = str(exc)
        if isinstance(exc, UnicodeDecodeError):
            what = "is corrupt (it holds text that is not UTF-8)"
        elif "not a database" in text:
            what = "is not an SQLite database (overwritten with other bytes?)"
        elif "malformed" in text or "corrupt" in text:
            what = "is corrupt (truncated or damaged)"
        elif "locked" in text or "busy" in text:
            return StoreError(
                f"The catalog {self.path} is locked ({text}). Fix: wait for the other process writing to this "
                "store to finish, or stop it."
            )
        elif "unable to open" in text or "readonly" in text:
            what = "cannot be opened for reading and writing (permissions, or a read-only disk)"
        else:
            what = "is not usable"
        return StoreError(f"The catalog {self.path} {what}: {text}. {_fix(self.path)}")

    def integrity(self) -> list[str]:
        """SQLite's own integrity check of the catalog (empty list = intact)."""
        with self._connect() as db:
            rows = [str(row[0]) for row in db.execute("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else [f"catalog {self.path}: {row}" for row in rows]

    def ids(self) -> set[str]:
        with self._connect() as db:
            return {str(row[0]) for row in db.execute("SELECT id FROM records")}

    def blobs(self) -> set[str]:
        """The blob path of every row (without parsing the rows: malformed ones included)."""
        with self._connect() as db:
            return {str(row[0]) for row in db.execute("SELECT blob FROM records")}

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

    def latest_raw(self, name_or_id: str) -> tuple[str, str, str, str] | None:
        """(id, kind, name, blob) of the latest row named ``name_or_id`` (or with that id), not parsed, so a
        malformed row can still be removed."""
        with self._connect() as db:
            for column in ("name", "id"):
                row = db.execute(
                    f"SELECT id, kind, name, blob FROM records WHERE {column} = ? ORDER BY created DESC, rowid DESC",
                    (name_or_id,),
                ).fetchone()
                if row is not None:
                    return str(row[0]), str(row[1]), str(row[2]), str(row[3])
        return None

    def query(self, config: dict[str, Any] | None = None, **filters: Any) -> list[Record]:
        """Records matching every given column value and config entry (None values are ignored), newest first.
        Every row matching the column filters is parsed, so a malformed one is an error, never skipped."""
        records = [self._to_record(row) for row in self._rows(**filters)]
        for record in records:  # a damaged index can lead SQLite to rows that do not match
            if any(value is not None and not _same(getattr(record, key), value) for key, value in filters.items()):
                raise StoreError(
                    f"The catalog {self.path} is corrupt: its index returned row {record.id!r} for "
                    f"{ {k: v for k, v in filters.items() if v is not None} }. {_fix(self.path)}"
                )
        wanted = (config or {}).items()
        return [r for r in records if all(key in r.config and r.config[key] == value for key, value in wanted)]

    def query_checked(self) -> tuple[list[Record], list[str]]:
        """Every record that parses, and a problem line for each row that does not (for ``verify``)."""
        records, problems = [], []
        for row in self._rows():
            try:
                records.append(self._to_record(row))
            except StoreError as exc:
                problems.append(str(exc))
        return records, problems

    def _rows(self, **filters: Any) -> list[tuple[Any, ...]]:
        clauses, values = [], []
        for column, value in filters.items():
            if value is None:
                continue
            if column not in _COLUMNS:
                raise StoreError(f"Unknown record field {column!r}. Fix: use one of {', '.join(_COLUMNS)}.")
            clauses.append(f"{column} = ?")
            values.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as db:
            return db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM records {where} ORDER BY created DESC, rowid DESC", values
            ).fetchall()

    def _to_record(self, row: tuple[Any, ...]) -> Record:
        data = dict(zip(_COLUMNS, row, strict=True))
        problem = _row_problem(data)
        if problem:
            ident = data.get("id")
            raise StoreError(
                f"Catalog row {ident!r} (name {data.get('name')!r}) in {self.path} is malformed: {problem}. "
                f"Fix: remove it (saesteer store --store {self.path.parent} rm {ident}) and refit it or restore it "
                "from a bundle."
            )
        for key in _JSON_FIELDS:
            data[key] = json.loads(data[key])
        return Record(**data)


def _same(stored: Any, wanted: Any) -> bool:
    """SQL equality as the catalog applies it (an INTEGER column matches 8 and '8')."""
    return bool(stored == wanted or str(stored) == str(wanted))


def record_problem(record: Record) -> str:
    """What is wrong with a record about to be read or imported ('' if nothing)."""
    row = asdict(record)
    for key in _JSON_FIELDS:
        row[key] = json.dumps(row[key], sort_keys=True, default=str)
    return _row_problem(row)


def _row_problem(data: dict[str, Any]) -> str:
    """What is wrong with a raw catalog row ('' if nothing)."""
    for column in _COLUMNS:
        value = data[column]
        if column == "layer":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                return f"layer is {value!r}, not an integer"
        elif not isinstance(value, str):
            return f"{column} is {value!r}, not text"
    if data["kind"] not in KINDS:
        return f"kind {data['kind']!r} is not one of {', '.join(KINDS)}"
    if not data["id"] or not data["id"].replace("-", "").replace("_", "").isalnum():
        return f"id {data['id']!r} is not a plain identifier"
    if data["blob"] != f"blobs/{data['id']}.safetensors":
        return f"blob path {data['blob']!r} is not blobs/{data['id']}.safetensors"
    for key in _JSON_FIELDS:
        try:
            value = json.loads(data[key])
        except json.JSONDecodeError as exc:
            return f"{key} is not valid JSON ({exc})"
        if not isinstance(value, dict):
            return f"{key} is {type(value).__name__} JSON, not an object"
    return ""


def _check_regular(path: Path, what: str, *, missing_ok: bool) -> bool:
    """True if ``path`` is a regular file (False if absent and ``missing_ok``); StoreError otherwise."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        if missing_ok:
            return False
        raise StoreError(
            f"The {what} {path} is missing. Fix: restore it from a backup, or import your exported bundles into a "
            "new store (saesteer store --store NEW import BUNDLE)."
        ) from None
    except OSError as exc:
        raise StoreError(f"The {what} {path} cannot be examined ({exc.strerror}). {_fix(path)}") from exc
    if stat.S_ISREG(mode):
        return True
    if stat.S_ISLNK(mode):
        kind = f"a symbolic link (to {os.readlink(path)})"
    elif stat.S_ISDIR(mode):
        kind = "a directory"
    elif stat.S_ISFIFO(mode):
        kind = "a FIFO"
    else:
        kind = "a device or socket"
    raise StoreError(
        f"The {what} {path} is {kind}, not a regular file inside the store. Fix: replace it by the file itself "
        f"(a store never links to files elsewhere), or restore it from a backup; saesteer store --store "
        f"{path.parent} verify lists what is damaged."
    )


def _wal_problem(wal: Path) -> str | None:
    """Why the WAL header is invalid (None if it is valid, or the WAL is empty)."""
    try:
        with open(wal, "rb", buffering=0) as handle:
            header = handle.read(32)
    except FileNotFoundError:  # the last connection closed and removed it meanwhile
        return None
    if not header:
        return None
    if len(header) < 32:
        return f"{len(header)} bytes, shorter than a WAL header"
    magic, version = struct.unpack(">II", header[:8])
    if magic not in _WAL_MAGIC:
        return "no WAL magic number"
    if version != _WAL_VERSION:
        return f"unknown WAL version {version}"
    words = struct.unpack(f"{_WAL_MAGIC[magic]}6I", header[:24])
    s0 = s1 = 0
    for x0, x1 in zip(words[::2], words[1::2], strict=True):
        s0 = (s0 + x0 + s1) & 0xFFFFFFFF
        s1 = (s1 + x1 + s0) & 0xFFFFFFFF
    if (s0, s1) != struct.unpack(">II", header[24:32]):
        return _CHECKSUM_MISMATCH
    return None

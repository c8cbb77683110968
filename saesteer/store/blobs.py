"""Tensor blobs: safetensors files written atomically and verified by sha256 on read."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor

from saesteer.errors import StoreError


def write_blob(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> str:
    """Write tensors to ``path`` atomically (temp file, fsync, rename); return the sha256 of the bytes."""
    payload = st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    return write_bytes(path, payload)


def copy_blob(source: Path, target: Path, checksum: str) -> None:
    """Copy a verified blob byte for byte (re-serialising could reorder its header and change the hash)."""
    payload = _verified(source, checksum)
    _parse(payload, source)
    write_bytes(target, payload)


def write_bytes(path: Path, payload: bytes) -> str:
    """Atomic write of raw bytes; returns their sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return hashlib.sha256(payload).hexdigest()


def _verified(path: Path, checksum: str | None) -> bytes:
    try:
        payload = path.read_bytes()
    except FileNotFoundError as exc:
        raise StoreError(f"Blob {path} is missing. Fix: delete the record (saesteer store rm) and refit.") from exc
    if checksum is not None and hashlib.sha256(payload).hexdigest() != checksum:
        raise StoreError(f"Blob {path} does not match its checksum (corrupt or modified). Fix: refit or re-import it.")
    return payload


def _parse(payload: bytes, path: Path) -> dict[str, Tensor]:
    try:
        return st_load(payload)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise StoreError(f"Blob {path} is not a valid safetensors file ({exc}). Fix: refit or re-import it.") from exc


def read_blob(path: Path, checksum: str | None = None) -> dict[str, Tensor]:
    """Read a safetensors blob; a missing, altered or malformed file raises StoreError (no code runs)."""
    return _parse(_verified(path, checksum), path)

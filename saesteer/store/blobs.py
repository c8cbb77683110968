"""Tensor blobs: safetensors files written atomically and verified by sha256 on read."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import struct
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


def read_verified(path: Path, checksum: str | None, *, follow_links: bool = True) -> bytes:
    """The bytes of a regular file, checked against ``checksum``; never blocks on a FIFO or follows a link
    when ``follow_links`` is False. Every failure is a StoreError naming the problem."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise StoreError(f"Blob {path} is missing. {_FIX}") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError(
                f"Blob {path} is a symbolic link (to {os.readlink(path)}); a blob must be a regular file inside "
                f"blobs/. {_FIX}"
            ) from exc
        raise StoreError(f"Blob {path} cannot be read ({exc.strerror}). {_FIX}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StoreError(f"Blob {path} is not a regular file ({_file_type(path)}). {_FIX}")
    with os.fdopen(fd, "rb") as handle:
        try:
            payload = handle.read()
        except OSError as exc:
            raise StoreError(f"Blob {path} cannot be read ({exc.strerror}). {_FIX}") from exc
    if checksum is not None and hashlib.sha256(payload).hexdigest() != checksum:
        raise StoreError(
            f"Blob {path} does not match its checksum ({len(payload)} bytes: truncated, altered or replaced). {_FIX}"
        )
    return payload


_FIX = "Fix: refit the artifact, or restore it from a bundle (saesteer store --store DIR import BUNDLE)."


def _file_type(path: Path) -> str:
    mode = path.lstat().st_mode
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "a device or socket"


def parse_blob(payload: bytes, path: Path) -> dict[str, Tensor]:
    try:
        return st_load(payload)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise StoreError(f"Blob {path} is not a valid safetensors file ({exc}). Fix: refit or re-import it.") from exc


def blob_metadata(payload: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a parsed safetensors payload (empty if it has none)."""
    (size,) = struct.unpack("<Q", payload[:8])
    metadata = json.loads(payload[8 : 8 + size]).get("__metadata__") or {}
    return {str(k): str(v) for k, v in metadata.items()}


def read_blob(path: Path, checksum: str | None = None, *, follow_links: bool = True) -> dict[str, Tensor]:
    """Read a safetensors blob; a missing, altered or malformed file raises StoreError (no code runs)."""
    return parse_blob(read_verified(path, checksum, follow_links=follow_links), path)

"""Small, torch-free file helpers shared by the loss network, model files and the ONNX cache."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

__all__ = ["sha256_file", "sha256_bytes", "atomic_write_bytes"]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (model and weight files are tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename it into place.

    Why: a reader (another process stylizing with the same model, or a later run after a crash) sees either the old
    file or the complete new one, never half a file. The temp name comes from :func:`tempfile.mkstemp`
    (``.NAME.XXXXXXXX.tmp``), unique even between threads of one process, so concurrent writers never share one.
    """
    import tempfile  # here, not at the top: it brings shutil, random and the compressors, ~3 ms of every apply

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

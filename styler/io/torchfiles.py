"""Reading and writing torch archives safely: atomic writes and ``weights_only`` loads with user-facing errors.

Why here and not in training: model files (:mod:`styler.io.modelfile`) and training checkpoints
(:mod:`styler.train.checkpoints`) are both torch archives, and both must survive interruptions (temp file + fsync +
rename) and never execute code from a file a user hands in (``weights_only=True``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from styler.errors import ModelFileError

__all__ = ["atomic_torch_save", "safe_torch_load"]


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, then atomically rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def safe_torch_load(path: str | os.PathLike, what: str = "file") -> Any:
    """``torch.load(weights_only=True)`` with user-facing errors for missing, truncated and foreign files."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{what} not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{what} is a directory, not a file: {path}")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{what} is empty: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "weights_only" in text or "Unpickl" in type(exc).__name__:
            reason = "it contains Python objects beyond tensors and plain data, so it was not loaded (weights_only)"
        elif "zip" in text.lower() or "central directory" in text or "EOF" in text or "magic number" in text:
            reason = "it is truncated, corrupted or not a torch file"
        else:
            reason = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
        raise ModelFileError(f"cannot read {what} {path}: {reason}") from exc

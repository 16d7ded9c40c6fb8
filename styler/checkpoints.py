"""Atomic file writes and resumable training checkpoints.

A checkpoint holds everything needed to continue a run bit for bit: model and optimizer state, the step, the data
order position, every RNG state and the run's configuration. It is written to a temporary file in the same folder
and renamed over the old one, so an interruption (Ctrl-C, SIGTERM, power loss) leaves either the previous or the new
checkpoint, never a torn file. Loading uses ``weights_only=True``: a checkpoint never executes code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import ModelFileError

__all__ = ["atomic_torch_save", "save_checkpoint", "load_checkpoint", "safe_torch_load", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "styler-checkpoint"


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


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a training checkpoint atomically; ``state`` must only hold tensors and plain Python data."""
    atomic_torch_save({"format": CHECKPOINT_FORMAT, "format_version": 1, **state}, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a training checkpoint written by :func:`save_checkpoint`."""
    data = safe_torch_load(path, "checkpoint")
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path} is not a styler training checkpoint")
    return data

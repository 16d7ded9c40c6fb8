"""Reading and writing torch archives safely: atomic writes and ``weights_only`` loads with user-facing errors.

Why here and not in training: training checkpoints (:mod:`styler.train.checkpoints`) and v1 model files
(:mod:`styler.io.modelfile`) are torch archives, and both must survive interruptions (temp file + fsync + rename)
and never execute code from a file a user hands in (``weights_only=True``). The container is recognised from the
file's first bytes before torch sees it, so random bytes are reported as such and never as "Python objects".
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from styler.errors import ModelFileError
from styler.io.files import atomic_write_bytes
from styler.io.modelformat import SAFETENSORS, sniff_container

__all__ = ["atomic_torch_save", "safe_torch_load"]


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` written atomically (temp file beside ``path``, fsync, rename; :func:`atomic_write_bytes`).

    The archive is built in memory first: checkpoints and v1 model files are a few MB, and one write path for every
    file styler produces keeps the guarantees (and the temp-file naming the clean-up recognises) in one place.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def safe_torch_load(path: str | os.PathLike, what: str = "file") -> Any:
    """``torch.load(weights_only=True)`` with user-facing errors for missing, truncated and foreign files."""
    path = Path(path)
    if sniff_container(path, what) == SAFETENSORS:
        raise ModelFileError(f"cannot read {what} {path}: it is a safetensors file (a v2 model file?), not a torch "
                             "archive")
    try:
        with open(path, "rb") as handle:  # a handle, not the name: torch reads "*.safetensors" names otherwise
            return torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "truncated" in text:
            reason = "it is truncated"
        elif "weights_only" in text or "Unpickl" in type(exc).__name__:
            reason = "it contains Python objects beyond tensors and plain data, so it was not loaded (weights_only)"
        elif "zip" in text.lower() or "central directory" in text or "EOF" in text or "magic number" in text:
            reason = "it is truncated, corrupted or not a torch file"
        else:
            reason = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
        raise ModelFileError(f"cannot read {what} {path}: {reason}") from exc

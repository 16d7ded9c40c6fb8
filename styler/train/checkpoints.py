"""Atomic file writes and resumable training checkpoints.

A checkpoint holds everything needed to continue a run bit for bit: model and optimizer state, the step, the data
order position, every RNG state and the run's configuration. It is written to a temporary file in the same folder
and renamed over the old one, so an interruption (Ctrl-C, SIGTERM, power loss) leaves either the previous or the new
checkpoint, never a torn file. Loading uses ``weights_only=True``: a checkpoint never executes code.
"""

from __future__ import annotations

import os
from typing import Any

from styler.errors import ModelFileError
from styler.io.torchfiles import atomic_torch_save, safe_torch_load

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "styler-checkpoint"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a training checkpoint atomically; ``state`` must only hold tensors and plain Python data."""
    atomic_torch_save({"format": CHECKPOINT_FORMAT, "format_version": 1, **state}, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a training checkpoint written by :func:`save_checkpoint`."""
    data = safe_torch_load(path, "checkpoint")
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path} is not a styler training checkpoint")
    return data

"""Atomic file writes and resumable training checkpoints.

A checkpoint holds everything needed to continue a run bit for bit: model and optimizer state, the step, the data
order position, every RNG state and the run's configuration. It is written to a temporary file in the same folder
and renamed over the old one, so an interruption (Ctrl-C, SIGTERM, power loss) leaves either the previous or the new
checkpoint, never a torn file. Loading uses ``weights_only=True``: a checkpoint never executes code.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from styler.errors import ModelFileError
from styler.io.torchfiles import atomic_torch_save, safe_torch_load

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT", "ResumeState", "rng_state",
           "restore_rng_state"]

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


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG state a training step draws from (torch CPU, Python, and the CUDA device's), as plain data."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@dataclass
class ResumeState:
    """Where a run starts: step 0, or where its checkpoint left off.

    Why images seen and not only the step: the data schedule continues at the checkpoint's image position, so a run
    resumed with a different world size or per-rank batch skips and repeats nothing. ``history`` lists the
    (world size, per-rank batch) segments of the run; the model file records it.
    """

    step: int = 0
    elapsed: float = 0.0
    images_seen: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, checkpoint: dict[str, Any] | None, *, world_size: int, batch_size: int,
              warn: bool = True) -> ResumeState:
        """The state for a run of ``world_size`` ranks × ``batch_size`` images, from ``checkpoint`` if given.

        ``warn``: say so when the global batch changed (the run continues, but not as the original would have).
        """
        global_batch = batch_size * world_size
        state = cls()
        if checkpoint is not None:
            state = cls._from_checkpoint(checkpoint)
            saved_global = _saved_global_batch(checkpoint)
            if saved_global != global_batch and warn:
                warnings.warn(f"resuming with a global batch of {global_batch} ({world_size} rank(s) × {batch_size}) "
                              f"instead of {saved_global}: the data continues at image {state.images_seen} of the "
                              "schedule (nothing skipped or repeated), but the steps from here on are not those of "
                              "the original run", stacklevel=3)
        last = state.history[-1] if state.history else None
        if last is None or (last["world_size"], last["batch_size"]) != (world_size, batch_size):
            state.history.append({"from_step": state.step, "world_size": world_size, "batch_size": batch_size,
                                  "global_batch": global_batch})
        return state

    @classmethod
    def _from_checkpoint(cls, checkpoint: dict[str, Any]) -> ResumeState:
        step = int(checkpoint["step"])
        saved_global = _saved_global_batch(checkpoint)
        # Checkpoints written before distributed training lack images_seen and history: one process all along.
        history = checkpoint.get("history", [{"from_step": 0, "world_size": 1, "batch_size": saved_global,
                                              "global_batch": saved_global}])
        return cls(step=step, elapsed=float(checkpoint.get("elapsed", 0.0)),
                   images_seen=int(checkpoint.get("images_seen", step * saved_global)), history=list(history))


def _saved_global_batch(checkpoint: dict[str, Any]) -> int:
    return int(checkpoint.get("global_batch", checkpoint["config"]["batch_size"]))

"""Stopping a run cleanly: SIGINT/SIGTERM become a flag the training loop checks between steps.

Why a flag and not an exception from the handler: a signal can arrive in the middle of an optimizer step, leaving
the weights half updated. Checked between steps, it lets the trainer write a consistent checkpoint first, and
``--resume`` then continues exactly where the run stopped.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Any

from styler.errors import StylerError

__all__ = ["StopFlag", "TrainingInterrupted"]


class TrainingInterrupted(StylerError):
    """Raised after a SIGINT/SIGTERM once the checkpoint has been written."""

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint saved to {checkpoint}. "
                         f"Continue with: styler train --resume {checkpoint}")
        self.step = step
        self.checkpoint = checkpoint


class StopFlag:
    """Context manager that records SIGINT/SIGTERM in :attr:`signal` instead of stopping the process.

    A second Ctrl-C stops at once (``KeyboardInterrupt``), for a run that hangs. Outside the main thread signals
    cannot be caught; the flag then simply never rises. The previous handlers come back on exit.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def raised(self) -> bool:
        return self.signal is not None

    def __enter__(self) -> StopFlag:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:
            self._previous.clear()
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

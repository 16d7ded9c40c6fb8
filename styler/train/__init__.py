"""Training: configuration and presets, the trainer, data, checkpoints and distributed runs.

The public names load lazily, so ``import styler.train`` (and :mod:`styler.train.config`, which the CLI reads at
import time) stays free of torch; the trainer and torch load on first use of ``train`` or ``Trainer``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from styler.train.config import PRESETS, RESUMABLE_OVERRIDES, TrainConfig
    from styler.train.signals import TrainingInterrupted
    from styler.train.trainer import Trainer, TrainResult, train

#: public name -> module that defines it
_LAZY = {
    "TrainConfig": "styler.train.config",
    "PRESETS": "styler.train.config",
    "RESUMABLE_OVERRIDES": "styler.train.config",
    "TrainingInterrupted": "styler.train.signals",
    "Trainer": "styler.train.trainer",
    "TrainResult": "styler.train.trainer",
    "train": "styler.train.trainer",
}

__all__ = ["TrainConfig", "PRESETS", "RESUMABLE_OVERRIDES", "TrainingInterrupted", "Trainer", "TrainResult", "train"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'styler.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

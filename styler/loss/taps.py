"""Names of the VGG16 feature taps the perceptual loss can read, and where they sit in ``vgg16().features``.

Why a module of its own, free of torch: a training configuration names its content and style layers, and
:class:`~styler.train.config.TrainConfig` must reject a misspelt layer when it is built (before any data scan or
weight download), on an install or in a process that has not imported torch. The loss network
(:mod:`styler.loss.lossnet`) reads the same table to truncate and tap the network.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["TAP_INDICES", "unknown_taps"]

#: Tap name → index of the ReLU output in ``vgg16().features``.
TAP_INDICES: dict[str, int] = {
    "relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13, "relu3_3": 15,
    "relu4_1": 18, "relu4_2": 20, "relu4_3": 22, "relu5_1": 25, "relu5_2": 27, "relu5_3": 29,
}


def unknown_taps(names: Iterable[str]) -> list[str]:
    """The names in ``names`` that are not VGG16 taps, in their order (empty when all are known)."""
    return [name for name in names if name not in TAP_INDICES]

"""Layer norm for feature maps: statistics over (C, H, W) of each image, i.e. ``GroupNorm(1, C)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from styler.nn.kinds import group

if TYPE_CHECKING:
    from styler.nn.spec import NormSpec

__all__ = ["LayerNorm2d"]


class LayerNorm2d(nn.GroupNorm):
    """Layer norm for feature maps: statistics over (C, H, W) of each image, per-channel affine.

    This is exactly ``GroupNorm(1, C)``; it exists as a named class so that models print and report clearly.
    Unlike ``nn.LayerNorm([C, H, W])`` it works at every image size.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__(1, num_channels, eps=eps, affine=True)


MODULE_TYPES: tuple[type[nn.Module], ...] = (LayerNorm2d,)
IMAGE_STATISTICS = True


def build(spec: NormSpec, num_channels: int) -> nn.Module:
    return LayerNorm2d(num_channels, eps=spec.eps)


def freeze_affine(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    return group.freeze_affine(module, x)


def synchronized(module: nn.Module) -> nn.Module | None:
    return None


def mixes_batch(module: nn.Module) -> bool:
    return False

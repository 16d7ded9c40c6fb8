"""No normalization: the control of the ablation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from styler.nn.spec import NormSpec

MODULE_TYPES: tuple[type[nn.Module], ...] = ()
IMAGE_STATISTICS = False


def build(spec: NormSpec, num_channels: int) -> nn.Module:
    return nn.Identity()


def freeze_affine(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    return None


def synchronized(module: nn.Module) -> nn.Module | None:
    return None


def mixes_batch(module: nn.Module) -> bool:
    return False

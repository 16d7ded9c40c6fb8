"""Instance norm: statistics over (H, W) of each image and channel, identical in training and inference."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from styler.nn.kinds import affine_from_statistics

if TYPE_CHECKING:
    from styler.nn.spec import NormSpec

MODULE_TYPES: tuple[type[nn.Module], ...] = (nn.InstanceNorm2d,)
IMAGE_STATISTICS = True


def build(spec: NormSpec, num_channels: int) -> nn.Module:
    # track_running_stats stays False: with it, eval mode would use dataset averages and stop being instance norm.
    return nn.InstanceNorm2d(num_channels, eps=spec.eps, affine=True, track_running_stats=False)


def freeze_affine(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    assert isinstance(module, nn.InstanceNorm2d)
    if module.track_running_stats and not module.training:
        return None
    var, mean = torch.var_mean(x.float(), dim=(2, 3), correction=0, keepdim=True)
    return affine_from_statistics(module if module.affine else nn.Module(), mean, var, module.eps)


def synchronized(module: nn.Module) -> nn.Module | None:
    return None


def mixes_batch(module: nn.Module) -> bool:
    return False

"""Group norm: statistics over (C/G, H, W) of each image, with a fixed number of groups G or a fixed group size."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from styler.nn.kinds import affine_from_statistics

if TYPE_CHECKING:
    from styler.nn.spec import NormSpec

MODULE_TYPES: tuple[type[nn.Module], ...] = (nn.GroupNorm,)
IMAGE_STATISTICS = True


def build(spec: NormSpec, num_channels: int) -> nn.Module:
    spec.check_channels(num_channels)
    return nn.GroupNorm(spec.groups_for(num_channels), num_channels, eps=spec.eps, affine=True)


def freeze_affine(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Group statistics broadcast to every channel of their group (layer norm is the one-group case)."""
    assert isinstance(module, nn.GroupNorm)
    xs = x.float()
    n, c = xs.shape[:2]
    groups = module.num_groups
    var, mean = torch.var_mean(xs.reshape(n, groups, -1), dim=2, correction=0)
    mean = mean.repeat_interleave(c // groups, dim=1).view(n, c, 1, 1)
    var = var.repeat_interleave(c // groups, dim=1).view(n, c, 1, 1)
    return affine_from_statistics(module if module.affine else nn.Module(), mean, var, module.eps)


def synchronized(module: nn.Module) -> nn.Module | None:
    return None


def mixes_batch(module: nn.Module) -> bool:
    return False

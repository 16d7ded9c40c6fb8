"""Batch norm: statistics over (N, H, W) in training, running averages in inference; and its synchronized form.

Training statistics depend on the batch-mates, and inference uses averages collected in training, so BN is the
ablation's negative control for batch independence (and the only kind with a large train/eval gap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from styler.nn.collectives import all_reduce_sum, group_active
from styler.nn.kinds import copy_state

if TYPE_CHECKING:
    from styler.nn.spec import NormSpec

__all__ = ["SyncBatchNorm2d"]

MODULE_TYPES: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._BatchNorm,)
IMAGE_STATISTICS = False


def build(spec: NormSpec, num_channels: int) -> nn.Module:
    return nn.BatchNorm2d(num_channels, eps=spec.eps, momentum=spec.momentum)


def freeze_affine(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Eval-mode BN already normalizes with global running statistics: nothing to freeze for tiles."""
    return None


def mixes_batch(module: nn.Module) -> bool:
    return True


class SyncBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are pooled over the images of every rank; works with gloo on CPU.

    The same state (weight, bias, running_mean, running_var, num_batches_tracked) and semantics as torch BN, so a
    model file stores it as a plain ``BatchNorm2d``: normalization with the biased variance of the *global* batch,
    ``running_var`` updated with the unbiased global variance, momentum on the new value (``None``: cumulative mean).
    The pooled variance uses the stable two-pass form (global mean first, then Σ n_r·(σ²_r + (μ_r − μ)²)), never
    ``E[x²] − μ²``. Eval mode, or no process group, is plain batch norm.
    """

    process_group: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and group_active(self.process_group)):
            return super().forward(x)
        if x.dim() != 4:
            raise ValueError(f"SyncBatchNorm2d expects a 4-D NCHW tensor, got shape {tuple(x.shape)}")
        dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        xs = x.to(dtype)
        count = xs.shape[0] * xs.shape[2] * xs.shape[3]
        var_local, mean_local = torch.var_mean(xs, dim=(0, 2, 3), correction=0)
        first = all_reduce_sum(torch.cat([mean_local * count, mean_local.new_full((1,), float(count))]),
                               self.process_group)
        total = first[-1].detach()
        mean = first[:-1] / total
        var = all_reduce_sum(count * (var_local + (mean_local - mean).pow(2)), self.process_group) / total
        tracked, running_mean, running_var = self.num_batches_tracked, self.running_mean, self.running_var
        if self.track_running_stats and tracked is not None and running_mean is not None and running_var is not None:
            with torch.no_grad():
                tracked.add_(1)
                momentum = 1.0 / float(tracked) if self.momentum is None else self.momentum
                n = float(total)
                running_mean.mul_(1 - momentum).add_(mean.detach().to(running_mean.dtype), alpha=momentum)
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = scale * self.weight.to(dtype)
        shift = -mean * scale
        if self.affine:
            shift = shift + self.bias.to(dtype)
        return (xs * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)).to(x.dtype)


def synchronized(module: nn.Module) -> nn.Module | None:
    """A :class:`SyncBatchNorm2d` carrying ``module``'s state (None for anything but a plain ``BatchNorm2d``)."""
    if type(module) is not nn.BatchNorm2d:
        return None
    return copy_state(SyncBatchNorm2d(module.num_features, eps=module.eps, momentum=module.momentum,
                                      affine=module.affine, track_running_stats=module.track_running_stats), module)

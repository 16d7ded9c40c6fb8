"""A differentiable all-reduce for statistics that span processes (synchronized batch and switchable norms).

Why in ``nn`` and not in training: the synchronized norm layers (:mod:`styler.nn.kinds.batch`,
:mod:`styler.nn.kinds.switchable`) call it inside their forward pass; outside a process group it is the identity, so
the layers work unchanged in a single process.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = ["all_reduce_sum", "group_active"]


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks with a gradient: the backward pass is again a sum over ranks.

    Why that is the right gradient: each rank's loss depends on the pooled value S = Σ_r s_r, so the gradient that
    reaches rank r's contribution s_r is Σ_r' ∂L_r'/∂S, the sum of every rank's upstream gradient. DDP then averages
    the parameter gradients, which turns Σ_r L_r into the mean loss of the global batch.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, group: Any) -> torch.Tensor:  # noqa: ANN401
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN401
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def all_reduce_sum(tensor: torch.Tensor, group: Any = None) -> torch.Tensor:
    """Differentiable sum over the ranks of ``group`` (identity when there is no process group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return tensor
    return _AllReduceSum.apply(tensor, group)


def group_active(group: Any) -> bool:
    """True when ``group`` (None: the default group) spans more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1

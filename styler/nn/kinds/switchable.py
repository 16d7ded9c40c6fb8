"""Switchable norm (Luo et al., ICLR 2019): a learned softmax mix of IN, LN and optionally BN statistics.

The layer, its synchronized form for distributed training, the batch-average procedure for its inference statistics,
and the registry glue, in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from styler.nn.collectives import all_reduce_sum, group_active
from styler.nn.kinds import affine_from_statistics, copy_state

if TYPE_CHECKING:
    from styler.nn.spec import NormSpec

__all__ = ["SwitchNorm2d", "SyncSwitchNorm2d", "switchable_layers", "finalize_switchable_statistics"]


class SwitchNorm2d(nn.Module):
    """Switchable Normalization (Luo et al., ICLR 2019) for NCHW feature maps, written from the paper's equations.

    The layer computes per-(n, c) instance statistics once and derives the layer-norm and batch-norm statistics from
    them with the *stable* law-of-total-variance form (no ``E[x²] − μ²`` cancellation)::

        σ²_ln[n] = mean_c σ²_in[n,c] + mean_c (μ_in[n,c] − μ_ln[n])²
        σ²_bn[c] = mean_n σ²_in[n,c] + mean_n (μ_in[n,c] − μ_bn[c])²

    The normalizing mean and variance are separate softmax mixes (logits ``mean_logits`` and ``var_logits``, in the
    order in, ln[, bn]) of those statistics. Variances are biased by default (``var_correction=0``), which makes
    one-hot weights reproduce torch IN/LN/BN exactly and keeps N×C×1×1 inputs finite.

    Running statistics (only with ``using_bn``) follow torch's momentum convention ``r ← (1 − m)·r + m·s``; an
    official-code decay ``d`` maps to ``m = 1 − d`` (0.9 → 0.1, 0.997 → 0.003). Unlike torch BN the running variance
    stores σ²_bn as computed (no n/(n−1) factor), so the BN branch uses the same estimator in train and eval. Buffers
    start at mean 0 / variance 1 so that an untrained eval pass is well defined.

    With ``using_moving_average=False`` the running statistics are the *batch average* instead: training forwards
    only accumulate (in fp64) the sums of μ_bn and σ²_bn + μ_bn², and :meth:`finalize_batch_average` turns them into
    the pooled mean and pooled biased variance. Evaluating before finalizing raises, since the buffers mean nothing
    yet. Use :func:`styler.nn.norms.finalize_switchable_statistics` to run the procedure over a data source.
    """

    # Buffers (registered in __init__ only where the configuration uses them), typed for the checker.
    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor
    batch_mean_sum: torch.Tensor
    batch_sq_sum: torch.Tensor
    batch_count: torch.Tensor
    finalized: torch.Tensor

    def __init__(
        self,
        num_channels: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        using_bn: bool = False,
        using_moving_average: bool = True,
        var_correction: int = 0,
        last_gamma: bool = False,
    ) -> None:
        super().__init__()
        if var_correction not in (0, 1):
            raise ValueError(f"var_correction must be 0 (biased) or 1 (unbiased), got {var_correction}")
        self.num_channels = num_channels
        self.eps = eps
        self.momentum = momentum
        self.using_bn = using_bn
        self.using_moving_average = using_moving_average
        self.var_correction = var_correction
        self.weight = nn.Parameter(torch.zeros(num_channels) if last_gamma else torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        branches = 3 if using_bn else 2
        # Equal logits = uniform mixture at initialization.
        self.mean_logits = nn.Parameter(torch.ones(branches))
        self.var_logits = nn.Parameter(torch.ones(branches))
        if using_bn:
            self.register_buffer("running_mean", torch.zeros(num_channels))
            self.register_buffer("running_var", torch.ones(num_channels))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
            if not using_moving_average:
                self.register_buffer("batch_mean_sum", torch.zeros(num_channels, dtype=torch.float64))
                self.register_buffer("batch_sq_sum", torch.zeros(num_channels, dtype=torch.float64))
                self.register_buffer("batch_count", torch.tensor(0, dtype=torch.long))
                self.register_buffer("finalized", torch.tensor(False))

    @property
    def branch_names(self) -> tuple[str, ...]:
        return ("in", "ln", "bn") if self.using_bn else ("in", "ln")

    def mixture_weights(self) -> dict[str, dict[str, float]]:
        """Current softmax weights, ``{"mean": {"in": .., "ln": .., ["bn": ..]}, "var": {...}}``, for logging/plots."""
        with torch.no_grad():
            mean_w = torch.softmax(self.mean_logits.float(), 0).tolist()
            var_w = torch.softmax(self.var_logits.float(), 0).tolist()
        return {"mean": dict(zip(self.branch_names, mean_w)), "var": dict(zip(self.branch_names, var_w))}

    def extra_repr(self) -> str:
        return (f"{self.num_channels}, eps={self.eps}, momentum={self.momentum}, using_bn={self.using_bn}, "
                f"using_moving_average={self.using_moving_average}, var_correction={self.var_correction}")

    # -- batch-average inference statistics -------------------------------------------------------------------------
    def reset_batch_average(self) -> None:
        """Clear the accumulated sums before a finalize pass."""
        if not self.using_bn or self.using_moving_average:
            return
        self.batch_mean_sum.zero_()
        self.batch_sq_sum.zero_()
        self.batch_count.zero_()

    def finalize_batch_average(self) -> None:
        """Set the running statistics to the pooled mean and pooled biased variance of the accumulated batches."""
        if not self.using_bn or self.using_moving_average:
            return
        count = int(self.batch_count)
        if count == 0:
            raise RuntimeError("SwitchNorm2d batch average: no training batches were accumulated before finalize")
        mean = self.batch_mean_sum / count
        var = self.batch_sq_sum / count - mean * mean
        self.running_mean.copy_(mean.to(self.running_mean.dtype))
        self.running_var.copy_(var.clamp_min(0).to(self.running_var.dtype))
        self.finalized.fill_(True)

    # -- forward -----------------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"SwitchNorm2d expects a 4-D NCHW tensor, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_channels:
            raise ValueError(f"SwitchNorm2d({self.num_channels}) got {x.shape[1]} channels")
        # Half-precision inputs: keep the statistics in fp32 (docs/norms.md §8.5).
        stats_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        xs = x.to(stats_dtype)
        mean, var = self.mixed_statistics(xs)
        scale = self.weight.to(stats_dtype).view(1, -1, 1, 1) * torch.rsqrt(var + self.eps)
        shift = self.bias.to(stats_dtype).view(1, -1, 1, 1) - mean * scale
        return (xs * scale + shift).to(x.dtype)

    def mixed_statistics(self, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The softmax-mixed mean and variance this layer normalizes ``xs`` with (broadcastable to N×C×1×1).

        Shared by :meth:`forward` and by tiled inference (:mod:`styler.infer.tiling`), which freezes exactly these
        statistics, so the two can never disagree. In training mode with the BN branch it updates the running
        statistics, as a forward does.
        """
        stats_dtype = xs.dtype
        var_in, mean_in = torch.var_mean(xs, dim=(2, 3), correction=self.var_correction, keepdim=True)

        mean_ln = mean_in.mean(dim=1, keepdim=True)
        var_ln = var_in.mean(dim=1, keepdim=True) + (mean_in - mean_ln).pow(2).mean(dim=1, keepdim=True)
        means = [mean_in, mean_ln]
        variances = [var_in, var_ln]

        if self.using_bn:
            if self.training:
                mean_bn, var_bn = self._batch_statistics(mean_in, var_in)
                self._update_running_stats(mean_bn.detach().flatten(), var_bn.detach().flatten())
            else:
                if not self.using_moving_average and not bool(self.finalized):
                    raise RuntimeError(
                        "SwitchNorm2d with batch-average statistics was evaluated before finalize_batch_average(); "
                        "run styler.nn.norms.finalize_switchable_statistics over training batches first")
                mean_bn = self.running_mean.to(stats_dtype).view(1, -1, 1, 1)
                var_bn = self.running_var.to(stats_dtype).view(1, -1, 1, 1)
            means.append(mean_bn)
            variances.append(var_bn)

        mean_w = torch.softmax(self.mean_logits.to(stats_dtype), 0)
        var_w = torch.softmax(self.var_logits.to(stats_dtype), 0)
        mean = sum(w * m for w, m in zip(mean_w, means))
        var = sum(w * v for w, v in zip(var_w, variances))
        return mean, var

    def _batch_statistics(self, mean_in: torch.Tensor, var_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """BN-branch statistics (1×C×1×1) from the N×C×1×1 instance statistics of this batch.

        A hook for distributed training: :class:`styler.train.distributed.SyncSwitchNorm2d` overrides it to pool the
        statistics over the images of every rank instead of only this process's batch.
        """
        mean_bn = mean_in.mean(dim=0, keepdim=True)
        var_bn = var_in.mean(dim=0, keepdim=True) + (mean_in - mean_bn).pow(2).mean(dim=0, keepdim=True)
        return mean_bn, var_bn

    def _update_running_stats(self, mean_bn: torch.Tensor, var_bn: torch.Tensor) -> None:
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            if not self.using_moving_average:
                m64 = mean_bn.double()
                self.batch_mean_sum.add_(m64)
                self.batch_sq_sum.add_(var_bn.double() + m64 * m64)
                self.batch_count.add_(1)
                return
            momentum = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
            self.running_mean.mul_(1 - momentum).add_(mean_bn.to(self.running_mean.dtype), alpha=momentum)
            self.running_var.mul_(1 - momentum).add_(var_bn.to(self.running_var.dtype), alpha=momentum)


class SyncSwitchNorm2d(SwitchNorm2d):
    """:class:`SwitchNorm2d` whose BN branch pools μ_bn, σ²_bn over every rank's images.

    From the per-image statistics (μ_in, σ²_in) of all ranks' images: μ_bn = Σ μ_in / N_total and
    σ²_bn = Σ (σ²_in + (μ_in − μ_bn)²) / N_total, the stable law-of-total-variance form of docs/norms.md §5.3, with
    gradients through both sums. The IN and LN branches are per image and are untouched.
    """

    process_group: Any = None

    def _batch_statistics(self, mean_in: torch.Tensor, var_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not group_active(self.process_group):
            return super()._batch_statistics(mean_in, var_in)
        n = mean_in.shape[0]
        first = all_reduce_sum(torch.cat([mean_in.sum(dim=0).flatten(), mean_in.new_full((1,), float(n))]),
                               self.process_group)
        total = first[-1].detach()
        mean_bn = (first[:-1] / total).view(1, -1, 1, 1)
        second = all_reduce_sum((var_in + (mean_in - mean_bn).pow(2)).sum(dim=0).flatten(), self.process_group)
        var_bn = (second / total).view(1, -1, 1, 1)
        return mean_bn, var_bn


def switchable_layers(model: nn.Module) -> Iterator[tuple[str, SwitchNorm2d]]:
    """Yield ``(name, layer)`` for every :class:`SwitchNorm2d` in ``model`` (for logging and plots)."""
    for name, module in model.named_modules():
        if isinstance(module, SwitchNorm2d):
            yield name, module


@torch.no_grad()
def finalize_switchable_statistics(model: nn.Module, batches: Iterator[torch.Tensor] | list[torch.Tensor]) -> int:
    """Run SN's batch-average procedure: reset sums, forward ``batches`` in train mode, then finalize.

    Returns the number of batches used. A no-op (returning 0) when the model has no batch-average SN layer.
    """
    layers = [m for _, m in switchable_layers(model) if m.using_bn and not m.using_moving_average]
    if not layers:
        return 0
    for layer in layers:
        layer.reset_batch_average()
    was_training = model.training
    model.train()
    count = 0
    try:
        for batch in batches:
            model(batch)
            count += 1
    finally:
        model.train(was_training)
    for layer in layers:
        layer.finalize_batch_average()
    return count


MODULE_TYPES: tuple[type[nn.Module], ...] = (SwitchNorm2d,)
IMAGE_STATISTICS = True


def build(spec: NormSpec, num_channels: int) -> nn.Module:
    return SwitchNorm2d(num_channels, eps=spec.eps, momentum=spec.momentum, using_bn=spec.using_bn,
                        using_moving_average=spec.using_moving_average, var_correction=spec.var_correction)


def freeze_affine(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The mixed statistics broadcast to channels; in eval the BN branch contributes its running statistics."""
    assert isinstance(module, SwitchNorm2d)
    mean, var = module.mixed_statistics(x.float())
    return affine_from_statistics(module, mean.expand(1, module.num_channels, 1, 1),
                                  var.expand(1, module.num_channels, 1, 1), module.eps)


def synchronized(module: nn.Module) -> nn.Module | None:
    """A :class:`SyncSwitchNorm2d` for an SN with its BN branch (the other branches are per image)."""
    if type(module) is not SwitchNorm2d or not module.using_bn:
        return None
    return copy_state(SyncSwitchNorm2d(module.num_channels, eps=module.eps, momentum=module.momentum, using_bn=True,
                                       using_moving_average=module.using_moving_average,
                                       var_correction=module.var_correction), module)


def mixes_batch(module: nn.Module) -> bool:
    return isinstance(module, SwitchNorm2d) and module.using_bn

"""Forward passes in a chosen mode and precision, and the difference statistics every measurement reports.

Two rules make the measurements trustworthy, so they live in one place:

* a train-mode forward runs on a throwaway ``copy.deepcopy`` of the network, so BN's running statistics never
  change between runs (otherwise every measurement would alter the model the next one measures);
* differences are taken on the raw, unclamped output in float64, with the tolerances of docs/norms.md §6.5.
"""

from __future__ import annotations

import copy
import math

import torch

from styler.io.modelfile import LoadedModel
from styler.nn.spec import NormSpec

__all__ = ["TOLERANCES", "forward", "network_in", "tolerance_for", "psnr", "diff_stats", "dtype_name",
           "stats_mode"]

#: Tolerances of docs/norms.md §6.5: (atol, rtol) per dtype.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {torch.float32: (1e-4, 1e-4), torch.float64: (1e-10, 0.0)}


def forward(net: torch.nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    """Eval forward on ``net`` itself, or a train-mode forward (batch statistics) on a throwaway deep copy."""
    with torch.no_grad():
        if mode == "eval":
            was = net.training
            net.eval()
            try:
                return net(x)
            finally:
                net.train(was)
        if mode == "train":
            scratch = copy.deepcopy(net).train()
            return scratch(x)
    raise ValueError(f"unknown mode {mode!r}: expected 'eval' or 'train'")


def network_in(loaded: LoadedModel, dtype: torch.dtype) -> torch.nn.Module:
    """The model's network on the CPU in ``dtype``, in eval mode; a copy unless it already is (fp64 is the exact
    proof, and the loaded model must stay usable in fp32)."""
    net = loaded.net
    device = next(net.parameters()).device
    if dtype != torch.float32 or device.type != "cpu":
        net = copy.deepcopy(net).to(device="cpu", dtype=dtype)
    return net.eval()


def tolerance_for(dtype: torch.dtype, scale: float) -> float:
    """``atol + rtol · scale`` for outputs of magnitude ``scale`` (other dtypes get fp32's tolerance)."""
    atol, rtol = TOLERANCES.get(dtype, TOLERANCES[torch.float32])
    return atol + rtol * scale


def psnr(diff: torch.Tensor) -> float:
    """PSNR with a peak of 1.0 on the raw output; ``inf`` when the difference is exactly zero."""
    mse = float(diff.double().pow(2).mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def diff_stats(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    """(max |a − b|, mean |a − b|, PSNR), computed in float64."""
    diff = a.double() - b.double()
    return float(diff.abs().max()), float(diff.abs().mean()), psnr(diff)


def dtype_name(dtype: torch.dtype) -> str:
    """``float32`` / ``float64``, as rows and JSON record the precision."""
    return str(dtype).split(".")[-1]


def stats_mode(spec: NormSpec, mode: str) -> str:
    """The mode as rows report it: ``train (batch statistics)`` when training mode mixes the batch, so a reader
    does not mistake a batch-independent norm's train row for a batch-statistics one."""
    if mode == "train" and spec.batch_dependent_in_training:
        return "train (batch statistics)"
    return mode

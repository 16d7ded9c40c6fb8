"""Choosing the compute device: one rule for training and stylizing, torch-free when the answer is the CPU."""

from __future__ import annotations

import os
import sys

from .errors import StylerError

__all__ = ["DEVICES", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda", "mps")


def _accelerator_hint() -> bool:
    """Cheap, torch-free guess whether a GPU might exist (so ``auto`` only imports torch when it could matter)."""
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia") or (
        sys.platform == "darwin" and os.uname().machine == "arm64")


def resolve_device(device: str = "auto") -> str:
    """``auto`` → ``cuda``, then ``mps``, else ``cpu``; ``cuda:N`` selects a GPU. An explicit device that is not
    available is an error, never a silent fallback to the CPU."""
    device = str(device).lower()
    base = device.split(":", 1)[0]
    if base not in DEVICES or (":" in device and base != "cuda"):
        raise StylerError(f"unknown device {device!r}; choose from auto, cpu, cuda, cuda:N, mps")
    if device == "cpu" or (device == "auto" and not _accelerator_hint()):
        return "cpu"
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if base == "cuda":
        if not cuda:
            raise StylerError(f"--device {device} requested but CUDA is not available (torch "
                              f"{torch.__version__}); use --device cpu or auto")
        if ":" in device and int(device.split(":")[1]) >= torch.cuda.device_count():
            raise StylerError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) present")
    if device == "mps" and not mps:
        raise StylerError("--device mps requested but Apple MPS is not available; use --device cpu or auto")
    return device

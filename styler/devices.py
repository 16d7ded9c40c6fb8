"""Choosing the compute device: one rule for training and stylizing, torch-free when the answer is the CPU."""

from __future__ import annotations

import os
import sys

from styler.errors import StylerError

__all__ = ["DEVICES", "bf16_is_fast", "cpu_has_native_bf16", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda", "mps")


def _accelerator_hint() -> bool:
    """Cheap, torch-free guess whether a GPU might exist (so ``auto`` only imports torch when it could matter)."""
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia") or (
        sys.platform == "darwin" and os.uname().machine == "arm64")


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bf16 in hardware (Intel AMX or AVX512-BF16), read from /proc/cpuinfo.

    Why it matters: with native bf16 the convolutions of a training step run ~4x faster than fp32 (measured with
    AMX: 880 vs 185 GFLOP/s), while without it bf16 is emulated and 2-3x *slower* than fp32 (the performance
    reference, measured on a Xeon without AMX). So bf16 autocast on the CPU is only worth turning on when this returns True.
    Non-Linux systems answer False (fp32, the safe choice).
    """
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def bf16_is_fast(device_type: str) -> bool:
    """Whether bf16 compute is a speed-up on this device type: a CUDA GPU with native bf16 (Ampere or newer), or a
    CPU with native bf16.

    Measured on an AMX Xeon (half width, ``scripts/bench_train.py --bf16`` and ``scripts/bench_apply.py
    --compiled``): a 160-px training step 1.75x faster in bf16 (2.01 vs 3.14 images/s, one loaded thread); stylizing
    1024² compiled in bf16 235 ms against 934 ms for ONNX Runtime fp32 (two threads). Without native bf16 the same
    autocast is ~3x *slower* (performance reference), so it stays off there.
    """
    if device_type == "cuda":
        import torch

        if not torch.cuda.is_available():
            return False
        try:  # pre-Ampere GPUs emulate bf16: no speed-up there
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # older torch without the argument
            return bool(torch.cuda.is_bf16_supported())
    return device_type == "cpu" and cpu_has_native_bf16()


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

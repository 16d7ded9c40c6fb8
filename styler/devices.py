"""Choosing the compute device and what the CPU computes natively: one rule for training and stylizing, torch-free
when the answer is the CPU.

The CPU side is a capability set read from the kernel's flag list (:func:`cpu_capabilities`): which of the
instructions that make bf16 or int8 convolutions fast this CPU has. Everything that picks a precision asks here, so
one environment variable (:data:`CPU_CAPS_ENV`) can make a machine answer like another one, e.g. a CPU without bf16
(``STYLER_CPU_CAPS=avx512_vnni``) when benchmarking what such a CPU gets.
"""

from __future__ import annotations

import os
import sys

from styler.errors import StylerError

__all__ = ["DEVICES", "BF16_FLAGS", "INT8_FLAGS", "CPU_CAPS_ENV", "bf16_is_fast", "cpu_flags", "cpu_capabilities",
           "capability_key", "cpu_has_native_bf16", "cpu_has_native_int8", "native_cpu_precisions", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda", "mps")
#: CPU flags (Linux names) that multiply bf16 in hardware: Intel AMX, and AVX512-BF16 (Cooper Lake, Sapphire Rapids,
#: AMD Zen 4 and later).
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
#: CPU flags for int8 dot products (u8×s8 multiply-accumulate into int32 in one instruction): AMX-INT8,
#: AVX512-VNNI, AVX-VNNI (Alder Lake and later client CPUs), and the Arm dot-product extension (``asimddp``).
#: Without one of them int8 convolutions take three instructions per step and are barely faster than fp32.
INT8_FLAGS = frozenset({"amx_int8", "avx512_vnni", "avx_vnni", "asimddp"})
#: Comma-separated flags that replace the detected capability set (empty: none), e.g. to benchmark what a CPU
#: without bf16 gets, or to test the precision rules on a faked CPU.
CPU_CAPS_ENV = "STYLER_CPU_CAPS"
_PROC_CPUINFO = "/proc/cpuinfo"


def _accelerator_hint() -> bool:
    """Cheap, torch-free guess whether a GPU might exist (so ``auto`` only imports torch when it could matter)."""
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia") or (
        sys.platform == "darwin" and os.uname().machine == "arm64")


def cpu_flags(cpuinfo: str = _PROC_CPUINFO) -> frozenset[str]:
    """The CPU's feature flags from ``cpuinfo`` (x86 ``flags``, Arm ``Features``; the first CPU listed).

    Apple silicon has no /proc/cpuinfo; every Apple M-series CPU has the Arm dot-product extension, so it answers
    ``{"asimddp"}``. Other systems answer an empty set (fp32, the safe choice).
    """
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    if cpuinfo == _PROC_CPUINFO and sys.platform == "darwin" and os.uname().machine == "arm64":
        return frozenset({"asimddp"})
    return frozenset()


def cpu_capabilities(cpuinfo: str = _PROC_CPUINFO) -> frozenset[str]:
    """The flags of :data:`BF16_FLAGS` and :data:`INT8_FLAGS` this CPU has; ``$STYLER_CPU_CAPS`` (comma-separated)
    replaces the answer for the default ``cpuinfo``."""
    override = os.environ.get(CPU_CAPS_ENV) if cpuinfo == _PROC_CPUINFO else None
    if override is not None:
        return frozenset(flag.strip() for flag in override.split(",") if flag.strip())
    return cpu_flags(cpuinfo) & (BF16_FLAGS | INT8_FLAGS)


def capability_key(caps: frozenset[str]) -> str:
    """A short, stable, file-name-safe name for a capability set (part of cache keys): ``avx512_bf16+avx512_vnni``."""
    return "+".join(sorted(caps)) or "none"


def cpu_has_native_bf16(cpuinfo: str = _PROC_CPUINFO) -> bool:
    """Whether this CPU multiplies bf16 in hardware (Intel AMX or AVX512-BF16), read from /proc/cpuinfo.

    Why it matters: with native bf16 the convolutions of a training step run ~4x faster than fp32 (measured with
    AMX: 880 vs 185 GFLOP/s), while without it bf16 is emulated and 2-3x *slower* than fp32 (the performance
    reference, measured on a Xeon without AMX). So bf16 autocast on the CPU is only worth turning on when this returns
    True. Non-Linux systems answer False (fp32, the safe choice). ``$STYLER_CPU_CAPS`` overrides it (see
    :func:`cpu_capabilities`).
    """
    return bool(cpu_capabilities(cpuinfo) & BF16_FLAGS)


def cpu_has_native_int8(cpuinfo: str = _PROC_CPUINFO) -> bool:
    """Whether this CPU has an int8 dot-product instruction (:data:`INT8_FLAGS`)."""
    return bool(cpu_capabilities(cpuinfo) & INT8_FLAGS)


def native_cpu_precisions(caps: frozenset[str] | None = None) -> tuple[str, ...]:
    """The precisions this CPU computes natively, fastest first: ``int8`` (a dot-product instruction), ``bf16``
    (AMX or AVX512-BF16), then ``fp32`` (always).

    Why int8 before bf16: an int8 dot product does twice the multiply-adds of a bf16 one per instruction (VNNI
    64 against AVX512-BF16 32 per 512-bit op; AMX-INT8 twice AMX-BF16). Measured on a 2-core Zen 4 (AVX512-BF16 and
    VNNI) with the default model at 1024² (``scripts/bench_apply.py --openvino``, 2 threads, quiet machine), as a
    share of the peer network's time: OpenVINO int8 0.41x, bf16 0.59x, fp32 1.11x.
    int8 is only a candidate: it still has to pass the quality gate of :mod:`styler.infer.quantize`.
    """
    caps = cpu_capabilities() if caps is None else caps
    return (*(("int8",) if caps & INT8_FLAGS else ()), *(("bf16",) if caps & BF16_FLAGS else ()), "fp32")


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

"""Inference backends: one module per runtime behind :class:`~styler.infer.backends.base.Backend`.

* ``torch`` (:mod:`.eager`): the eager :class:`~styler.nn.network.TransformerNet` on ``cpu``/``cuda``/``mps``,
  fp32 or bf16. The reference, and the only runtime that tiles (the others hand tiles to an eager fp32 copy).
* ``compiled`` (:mod:`.compiled`): ``torch.compile`` of the network, bf16 with channels_last where bf16 is native
  (CUDA; CPUs with Intel AMX or AVX512-BF16), else fp32. The fastest per image by far on such a CPU (1024², half
  width, two threads: 235 ms against 934 ms for ONNX Runtime fp32; ``scripts/bench_apply.py --compiled``), but
  every new image size compiles first (~20–50 s on 2 CPU cores; inductor caches on disk), and it needs a C++
  compiler on CPU: for long-lived processes and many images of one size, not for one-shot CLI calls. If compiling
  fails it runs eager instead and says so in ``notes``.
* ``onnx`` (:mod:`.ort`): ONNX Runtime on CPU. The model is exported once and cached (:mod:`styler.infer.onnx_export`),
  after which a process never imports torch. Parity with torch is checked at export time and in the tests.
* ``openvino`` (:mod:`.openvino`): OpenVINO on CPU, from the same ONNX export rewritten for CPU kernels
  (:mod:`styler.infer.ovgraph`), in fp32, bf16 or calibrated int8 (:mod:`styler.infer.quantize`); torch-free once
  its graphs are cached.
* ``auto``: on CPU, ``openvino`` in the fastest precision the CPU computes natively (int8 where it has a dot-product
  instruction and the model passed its int8 quality gate, else bf16 where native, else fp32), chosen per model and
  CPU; then ``onnx`` when OpenVINO is not installed or cannot run (a note says why when it was tried), and
  otherwise ``torch`` (with a note saying why when ONNX Runtime was tried and failed). On the apply-only install
  (no torch) there is nothing to fall back to after the CPU runtimes, and asking for torch, the compiled backend or
  a GPU says which package to install.

Precision: ``auto`` is fp32 for ``torch`` and ``onnx``, bf16-where-native for ``compiled``, and the per-CPU choice
above for ``openvino``; ``fp32`` / ``bf16`` / ``int8`` force one (bf16 needs ``openvino``, ``torch`` or
``compiled``, int8 needs ``openvino``, so with ``auto`` only ``fp32`` can be forced). Measured on the shipped
default model against fp32: compiled bf16 max |Δ| 0.008 at 1024² (PSNR 58 dB); eager bf16 PSNR 51 dB on Kodak
photos (worst pixel 0.08); the perceptual loss is unchanged to 3 digits. OpenVINO: see :mod:`.openvino`.

Adding a runtime: write one module whose class takes ``(model: ModelHandle, *, device, threads, precision)`` and
satisfies :class:`Backend` (raise :class:`BackendError` when it cannot run here), then add one line to
:data:`RUNTIMES`. This module imports no runtime until one is opened, so naming the choices stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from styler.errors import ModelFileError, StylerError
from styler.extras import MissingExtraError, has_torch, install_hint
from styler.infer.backends.base import Backend, BackendError, ModelHandle, ModelLike, TilingBackend

__all__ = ["Backend", "TilingBackend", "BackendError", "ModelHandle", "ModelLike", "RUNTIMES", "BACKENDS",
           "PRECISIONS", "open_backend"]

#: backend name -> "module:class" of its implementation, imported only when that backend is opened.
RUNTIMES: dict[str, str] = {
    "torch": "styler.infer.backends.eager:EagerBackend",
    "onnx": "styler.infer.backends.ort:OnnxBackend",
    "compiled": "styler.infer.backends.compiled:CompiledBackend",
    "openvino": "styler.infer.backends.openvino:OpenVinoBackend",
}
BACKENDS = ("auto", *RUNTIMES)
PRECISIONS = ("auto", "fp32", "bf16", "int8")
#: The CPU runtimes ``auto`` tries, fastest first, with the names its notes use.
AUTO_CPU_RUNTIMES = (("openvino", "OpenVINO"), ("onnx", "ONNX Runtime"))

Opener = Callable[..., Backend]


def _opener(name: str) -> Opener:
    module, _, attr = RUNTIMES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def open_backend(name: str, model: ModelLike, *, device: str = "auto", threads: int | None = None,
                 precision: str = "auto") -> Backend:
    """Open backend ``name`` (or pick one, for ``auto``) for ``model`` on ``device``.

    Checked in this order, so the cheapest mistake is reported first: the names, then the model (found, not yet
    loaded), then the device. ``threads``: intra-op threads (None: the runtime's default).
    """
    from styler.devices import resolve_device

    if name != "auto" and name not in RUNTIMES:
        raise StylerError(f"unknown backend {name!r}; choose from {', '.join(('auto', *RUNTIMES))}")
    if precision not in PRECISIONS:
        raise StylerError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if precision == "bf16" and name in ("auto", "onnx"):
        raise StylerError("bf16 runs on the openvino, torch or compiled backend; add --backend openvino (or compiled, "
                          "torch)")
    if precision == "int8" and name != "openvino":
        raise StylerError("int8 runs on the openvino backend; add --backend openvino")
    handle = ModelHandle.of(model)
    if not has_torch():  # the apply-only install: ONNX Runtime on CPU, and a clear message for anything else
        if name in ("torch", "compiled") or device not in ("auto", "cpu"):
            what = {"torch": "the torch backend (--backend torch, and the tiles of large images)",
                    "compiled": "the compiled backend"}.get(name, f"--device {device}")
            raise MissingExtraError(install_hint(what, ["torch"]))
        device = "cpu"
    device = resolve_device(device)
    if name != "auto":
        return _opener(name)(handle, device=device, threads=threads, precision=precision)
    return _open_auto(handle, device, threads, precision)


def _open_auto(model: ModelHandle, device: str, threads: int | None, precision: str) -> Backend:
    """On CPU with a model file, the first of :data:`AUTO_CPU_RUNTIMES` that runs (OpenVINO in the fastest precision
    the CPU computes natively, see :mod:`.openvino`; then ONNX Runtime), else eager torch.

    A broken model file is the user's error and is raised; any other reason a runtime cannot run becomes a note.
    OpenVINO simply not being installed is not worth one: ONNX Runtime is then the default, as it was before.
    """
    from styler.infer.backends import openvino

    notes: list[str] = []
    if device == "cpu" and model.path is not None:
        labels = [label for runtime, label in AUTO_CPU_RUNTIMES[1:]] + ["torch"]
        for (runtime, label), fallback in zip(AUTO_CPU_RUNTIMES, labels):
            if runtime == "openvino" and not openvino.openvino_available():
                continue
            try:
                backend = _opener(runtime)(model, device=device, threads=threads, precision=precision)
            except ModelFileError:
                raise
            except StylerError as exc:
                if runtime == "onnx" and not has_torch():  # nothing to fall back to: this reason is the answer
                    raise
                notes.append(f"{label} backend unavailable ({exc}); using {fallback}")
                continue
            backend.notes[:0] = notes
            return backend
    backend = _opener("torch")(model, device=device, threads=threads, precision=precision)
    backend.notes[:0] = notes
    return backend

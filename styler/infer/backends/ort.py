"""ONNX Runtime backend: the exported network on CPU, in a process that never imports torch once the export is cached.

Why: ONNX Runtime imports in 0.14 s against torch's 1.8 s, and runs this network 1.4–1.6× faster than eager torch
at ≥ 512² (``docs/performance.md`` §3). Finding, verifying and (with torch) exporting the graph is
:mod:`styler.infer.onnx_export`'s business; this module opens a session on the verified bytes it returns (never
re-reading the file, so what runs is what was checked) and runs it. It does not tile (tiling rewrites torch modules), so
the stylizer hands images that need tiles to an eager torch backend.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from styler.infer.backends.base import BackendError, ModelHandle
from styler.infer.onnx_export import INPUT_NAME, OUTPUT_NAME, STYLE_NAME, ensure_onnx

__all__ = ["OnnxBackend", "onnxruntime_available", "open_session", "run_session", "ORT_ACTIVATION_COST"]

#: Peak activation bytes per pixel per unit of network width in ONNX Runtime (its arena holds more than torch).
ORT_ACTIVATION_COST = 40


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def open_session(onnx_path: str | os.PathLike | bytes, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session on a graph file or a graph's bytes, all graph optimisations on, ``threads``
    intra-op threads."""
    if not onnxruntime_available():
        raise BackendError("onnxruntime is not installed (pip install onnxruntime)")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    source = onnx_path if isinstance(onnx_path, bytes) else str(onnx_path)
    try:
        return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        what = "graph" if isinstance(onnx_path, bytes) else str(onnx_path)
        raise BackendError(f"cannot load ONNX model {what}: {str(exc).splitlines()[0] if str(exc) else exc}"
                           ) from exc


def run_session(session: Any, batch: np.ndarray, style: np.ndarray | None = None) -> np.ndarray:
    """One inference on a session opened by :func:`open_session`; ``style`` is the style mix of a multi-style graph
    (its first style when None)."""
    feeds = {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}
    style_input = next((i for i in session.get_inputs() if i.name == STYLE_NAME), None)
    if style_input is not None:
        if style is None:
            style = np.zeros(int(style_input.shape[0]), dtype=np.float32)
            style[0] = 1.0
        feeds[STYLE_NAME] = np.ascontiguousarray(style, dtype=np.float32)
    return session.run([OUTPUT_NAME], feeds)[0]


class OnnxBackend:
    """The exported network in ONNX Runtime; see :class:`~styler.infer.backends.base.Backend`."""

    name = "onnx"
    precision = "fp32"
    tiles = False
    activation_cost = ORT_ACTIVATION_COST

    def __init__(self, model: ModelHandle, *, device: str, threads: int | None = None,
                 precision: str = "auto") -> None:
        if device != "cpu" or model.path is None:
            raise BackendError(f"the onnx backend runs on CPU only (device {device}); use --backend torch")
        if precision == "bf16":
            raise BackendError("bf16 runs on the torch or compiled backend; add --backend compiled (or torch)")
        if not onnxruntime_available():
            raise BackendError("onnxruntime is not installed")
        self.model = model
        self.device = device
        graph = ensure_onnx(model.path, model.loaded)
        self.path: Path = graph.path
        self.graph_source = graph.source  # shipped, cache, exported or temporary
        self.notes: list[str] = list(graph.notes)
        model.meta = graph.meta
        self._keepalive = graph.keepalive  # a temporary export's folder lives as long as this backend
        self._session = open_session(graph.data, threads=threads)

    def run(self, batch: np.ndarray) -> np.ndarray:
        return run_session(self._session, batch, self.model.style_mix)

"""Exporting a model to ONNX once, and finding that export again without torch.

Why a cache: a one-shot ``styler apply photo.jpg`` spends most of its time importing torch (1.8 s of a 2.5 s run at
512², ``docs/performance.md`` §7); ONNX Runtime imports in 0.14 s. So the first use of a model exports it (needs
torch and the ``onnx`` package), checks the export against torch on a random image, and caches the ``.onnx`` file
plus a JSON sidecar (name, architecture, metadata) under :func:`cache_dir`, keyed by the model file's SHA-256.
Later runs find the cache by hashing the model file (a few ms) and never import torch. Everything about where the
cache lives and when an entry is trusted is in this module.

The exported graph takes a ``N×3×H×W`` float32 input (:data:`INPUT_NAME`) in [0, 1] whose H and W are multiples
of 4 (the caller pads by reflection and crops back, exactly as :class:`~styler.nn.network.TransformerNet` does
internally); H, W and N are dynamic, so one file serves every image size.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from styler.infer.backends.base import BackendError
from styler.io.files import sha256_file

if TYPE_CHECKING:  # pragma: no cover
    from styler.io.modelfile import LoadedModel

__all__ = ["cache_dir", "cached_export", "export_onnx", "ensure_onnx", "OPSET", "EXPORT_VERSION",
           "PARITY_TOLERANCE", "INPUT_NAME", "OUTPUT_NAME"]

OPSET = 17
EXPORT_VERSION = 1  # bump to invalidate caches when the export recipe changes
PARITY_TOLERANCE = 1e-3  # max |onnx − torch| on outputs in [0, 1] accepted at export time (fp32 gives ~1e-6)
INPUT_NAME, OUTPUT_NAME = "input", "output"


def cache_dir() -> Path:
    """``$STYLER_CACHE_DIR``, else ``$XDG_CACHE_HOME/styler``, else ``~/.cache/styler``; ONNX files go in ``onnx/``."""
    base = os.environ.get("STYLER_CACHE_DIR")
    if base:
        return Path(base) / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "styler" / "onnx"


def _cache_paths(model_path: Path, digest: str) -> tuple[Path, Path]:
    stem = f"{model_path.stem}-{digest[:20]}-op{OPSET}-v{EXPORT_VERSION}"
    folder = cache_dir()
    return folder / f"{stem}.onnx", folder / f"{stem}.json"


def cached_export(model_path: str | os.PathLike, digest: str | None = None
                  ) -> tuple[Path, dict[str, Any]] | None:
    """The cached ONNX file and its sidecar for ``model_path`` (sha256 ``digest`` if known), or None (torch-free)."""
    model_path = Path(model_path)
    onnx_path, meta_path = _cache_paths(model_path, digest or sha256_file(model_path))
    if onnx_path.is_file() and meta_path.is_file():
        try:
            return onnx_path, json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None
    return None


def _parity_error(net: Any, onnx_path: Path) -> float:
    """Max |ONNX Runtime − torch| on a fixed random 68×92 image (a size the export's 64×64 example never saw)."""
    import torch

    from styler.infer.backends.ort import open_session, run_session

    probe = torch.rand(1, 3, 68, 92, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = net(probe).numpy()
    got = run_session(open_session(onnx_path, threads=1), probe.numpy())
    return float(np.abs(got - expected).max())


def export_onnx(net: Any, path: str | os.PathLike, *, check: bool = True) -> float:
    """Export a :class:`~styler.nn.network.TransformerNet` to ONNX (atomic write); returns the parity error checked
    against torch (``check``). Needs torch and the ``onnx`` package."""
    import warnings

    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    example = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    net = net.eval()
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            # The TorchScript-based exporter (dynamo=False) needs only the ``onnx`` package, not onnxscript.
            torch.onnx.export(net, (example,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                                            OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}})
        error = _parity_error(net, tmp) if check else 0.0
        if not error <= PARITY_TOLERANCE:
            raise BackendError(f"ONNX export differs from torch by {error:.2e} (> {PARITY_TOLERANCE})")
        os.replace(tmp, path)
        return error
    except BackendError:
        raise
    except Exception as exc:  # exporter failures come in many types
        raise BackendError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                           ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def ensure_onnx(model_path: str | os.PathLike, loaded: LoadedModel | None = None) -> tuple[Path, dict[str, Any]]:
    """The cached ONNX export of a model file and its metadata, exporting (with torch) and caching it on first use."""
    model_path = Path(model_path)
    digest = sha256_file(model_path)  # hashed once: a model file is megabytes
    found = cached_export(model_path, digest)
    if found is not None:
        return found
    if importlib.util.find_spec("onnx") is None:
        raise BackendError("exporting to ONNX needs the 'onnx' package (pip install onnx)")
    if loaded is None:
        from styler.io.modelfile import load_model

        loaded = load_model(model_path)
    onnx_path, meta_path = _cache_paths(model_path, digest)
    error = export_onnx(loaded.net, onnx_path)
    meta = {"name": loaded.name, "arch": loaded.arch.to_dict(), "metadata": loaded.metadata,
            "model_path": str(model_path), "parity_max_abs": error, "opset": OPSET}
    tmp = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, sort_keys=True, default=str))
    os.replace(tmp, meta_path)
    return onnx_path, meta

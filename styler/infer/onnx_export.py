"""Exporting a model to ONNX once, finding that graph again without torch, and trusting it only when it checks out.

Why: a one-shot ``styler apply photo.jpg`` spends most of its time importing torch (1.8 s of a 2.5 s run at 512²,
``docs/performance.md`` §7); ONNX Runtime imports in 0.14 s, and the apply-only install has no torch at all. So
:func:`ensure_onnx` looks for a graph in this order:

1. **shipped** beside the model file (``X.onnx`` + ``X.onnx.json`` next to ``X.safetensors``): every bundled model
   has one (``scripts/export_bundled.py``), so a fresh install stylizes at once;
2. **cached** under :func:`cache_dir`, keyed by the model file's sha256, from an earlier export;
3. **exported now** with torch and the ``onnx`` package, checked against torch on a random image, and cached. If the
   cache folder cannot be written (read-only ``HOME``, ``STYLER_CACHE_DIR`` under a file) the graph goes to a
   temporary folder for this run, with a note, instead of failing;
4. otherwise a clear error naming ``pip install 'styler[train]'``.

**Trust.** Each graph has a JSON record (:class:`GraphRecord`): the model's sha256, the graph's own sha256 and size,
opset, export recipe version, the exporter and runtime versions, the parity error, and the model's name,
architecture and metadata. A graph is used only when its record parses, names this model's sha256, and the graph's
bytes hash to the recorded sha256 — so another model's graph copied over it, a truncated or corrupted graph, or a
record from another export is never run; the session is opened from the very bytes that were hashed. A cached entry
whose exporter or runtime versions differ from the installed ones is stale and rebuilt when torch is there to do it.
Entries are written atomically (temp file + rename) under a per-entry lock, so concurrent processes never see half
an entry and never export the same model twice at once.

The exported graph takes a ``N×3×H×W`` float32 input (:data:`INPUT_NAME`) in [0, 1] whose H and W are multiples
of 4 (the caller pads by reflection and crops back, exactly as :class:`~styler.nn.network.TransformerNet` does
internally); H, W and N are dynamic, so one file serves every image size.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from styler.extras import has_module, has_torch, install_hint
from styler.infer.backends.base import BackendError
from styler.infer.onnx_records import (
    EXPORT_VERSION,
    OPSET,
    GraphRecord,
    installed_versions,
    load_trusted,
    record_path,
    write_entry,
)
from styler.io.files import sha256_bytes, sha256_file
from styler.io.modelformat import sniff_container

if TYPE_CHECKING:  # pragma: no cover
    from styler.io.modelfile import LoadedModel

__all__ = ["cache_dir", "cached_export", "export_onnx", "export_graph", "ensure_onnx", "shipped_paths",
           "OnnxGraph", "OPSET", "EXPORT_VERSION", "PARITY_TOLERANCE", "INPUT_NAME", "OUTPUT_NAME"]

PARITY_TOLERANCE = 1e-3  # max |onnx − torch| on outputs in [0, 1] accepted at export time (fp32 gives ~1e-6)
INPUT_NAME, OUTPUT_NAME = "input", "output"
#: The second input of a multi-style (conditional norm) graph: the style mix, one weight per style.
STYLE_NAME = "style"


@dataclass
class OnnxGraph:
    """A verified graph for one model: where it lies, its verified bytes, the model's metadata, and notes."""

    path: Path
    data: bytes
    meta: dict[str, Any]
    source: str  # "shipped", "cache", "exported" or "temporary"
    notes: list[str] = field(default_factory=list)
    keepalive: Any = None  # the temporary folder of a "temporary" graph (removed when this object goes)


def cache_dir() -> Path:
    """``$STYLER_CACHE_DIR``, else ``$XDG_CACHE_HOME/styler``, else ``~/.cache/styler``; ONNX files go in ``onnx/``."""
    base = os.environ.get("STYLER_CACHE_DIR")
    if base:
        return Path(base) / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "styler" / "onnx"


def _cache_graph(model_path: Path, digest: str) -> Path:
    return cache_dir() / f"{model_path.stem}-{digest[:20]}-op{OPSET}-v{EXPORT_VERSION}.onnx"


def shipped_paths(model_path: str | os.PathLike) -> tuple[Path, Path]:
    """Where a graph shipped with ``model_path`` lies (``X.onnx`` and its record ``X.onnx.json`` beside it)."""
    graph = Path(model_path).with_suffix(".onnx")
    return graph, record_path(graph)


def cached_export(model_path: str | os.PathLike, digest: str | None = None
                  ) -> tuple[Path, dict[str, Any]] | None:
    """The trusted cached ONNX file for ``model_path`` (sha256 ``digest`` if known) and its model metadata, or None.
    Torch-free."""
    model_path = Path(model_path)
    graph = _cache_graph(model_path, digest or sha256_file(model_path))
    found = load_trusted(graph, digest or sha256_file(model_path))
    return (graph, found.record.meta) if found.record is not None else None


def _parity_error(net: Any, data: bytes) -> float:
    """Max |ONNX Runtime − torch| on a fixed random 68×92 image (a size the export's 64×64 example never saw)."""
    import torch

    from styler.infer.backends.ort import open_session, run_session

    probe = torch.rand(1, 3, 68, 92, generator=torch.Generator().manual_seed(1))
    styles = _num_styles(net)
    mix = None
    if styles:  # a blend that is neither the default style nor one-hot, so the style input is really checked
        mix = torch.linspace(1.0, 2.0, styles)
        mix = mix / mix.sum()
    with torch.inference_mode():
        expected = (net(probe) if mix is None else net(probe, style=mix)).numpy()
    got = run_session(open_session(data, threads=1), probe.numpy(), None if mix is None else mix.numpy())
    return float(np.abs(got - expected).max())


def _num_styles(net: Any) -> int:
    """The style count of a conditional-norm network (0 for every other norm)."""
    arch = getattr(net, "arch", None)
    norm = getattr(arch, "norm", None)
    return int(norm.num_styles) if norm is not None and norm.kind == "conditional" else 0


def _styled_export(net: Any) -> Any:
    """``net`` wrapped as a module whose forward is ``(x, style) -> net(x, style=style)``, in eval mode, so a
    multi-style graph takes the style mix as its second input.

    The wrapper class is defined here rather than at module level because it subclasses ``torch.nn.Module`` and
    this module must import without torch (the shipped and cached graphs are found torch-free). The wrapped network
    is the attribute ``net``, which names the graph's weights (``net.…``).
    """
    import torch

    class Styled(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.net = inner

        def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
            return self.net(x, style=style)

    return Styled(net).eval()


def export_graph(net: Any, *, check: bool = True) -> tuple[bytes, float]:
    """The ONNX graph of a :class:`~styler.nn.network.TransformerNet` as bytes, and its parity error against torch
    (``check``; refused above :data:`PARITY_TOLERANCE`). Needs torch and the ``onnx`` package; writes no file."""
    import warnings

    import torch

    example = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    net = net.eval()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            # The TorchScript-based exporter (dynamo=False) needs only the ``onnx`` package, not onnxscript.
            # (a file object works, though the stubs name only paths)
            styles = _num_styles(net)
            module: Any = net
            args: tuple[Any, ...] = (example,)
            names = [INPUT_NAME]
            if styles:  # multi-style: one graph serves every style and blend through its style input
                module, args, names = _styled_export(net), (example, torch.full((styles,), 1.0 / styles)), \
                    [INPUT_NAME, STYLE_NAME]
            torch.onnx.export(module, args, buffer, dynamo=False, opset_version=OPSET,  # type: ignore[arg-type]
                              input_names=names, output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                                            OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}})
        data = buffer.getvalue()
        error = _parity_error(net, data) if check else 0.0
    except BackendError:
        raise
    except Exception as exc:  # exporter failures come in many types
        raise BackendError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                           ) from exc
    if not error <= PARITY_TOLERANCE:
        raise BackendError(f"ONNX export differs from torch by {error:.2e} (> {PARITY_TOLERANCE})")
    return data, error


def export_onnx(net: Any, path: str | os.PathLike, *, check: bool = True) -> float:
    """Export a network to an ONNX file (atomic write); returns the parity error checked against torch."""
    from styler.io.files import atomic_write_bytes

    data, error = export_graph(net, check=check)
    atomic_write_bytes(path, data)
    return error


def build_record(loaded: LoadedModel, model_path: Path, digest: str, data: bytes, parity: float) -> GraphRecord:
    """The record of a graph just exported from ``loaded`` (the model file ``model_path`` with sha256 ``digest``)."""
    return GraphRecord(model_sha256=digest, model_file=model_path.name, onnx_sha256=sha256_bytes(data),
                       onnx_bytes=len(data), opset=OPSET, export_version=EXPORT_VERSION,
                       versions=installed_versions(), parity_max_abs=parity,
                       meta={"name": loaded.name, "arch": loaded.arch.to_dict(), "metadata": loaded.metadata})


def export_entry(model_path: Path, digest: str, loaded: LoadedModel | None, graph_path: Path) -> OnnxGraph:
    """Export the model and write the graph and its record at ``graph_path`` (used for the cache and the zoo)."""
    if loaded is None:
        from styler.io.modelfile import load_model

        loaded = load_model(model_path)
    data, parity = export_graph(loaded.net)
    record = build_record(loaded, model_path, digest, data, parity)
    write_entry(graph_path, data, record)
    return OnnxGraph(graph_path, data, record.meta, "exported")


def _open_lock(graph_path: Path) -> IO[bytes]:
    """The lock file of one cache entry, opened; raises OSError when the cache folder cannot be written (which is
    how an unusable cache is detected before any export work)."""
    graph_path.parent.mkdir(parents=True, exist_ok=True)
    return open(graph_path.with_name(f".{graph_path.name}.lock"), "ab")


@contextlib.contextmanager
def _locked(handle: IO[bytes]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``handle`` (POSIX; elsewhere no lock: the records still guard every read)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _export_to_temp(model_path: Path, digest: str, loaded: LoadedModel | None, reason: OSError) -> OnnxGraph:
    """No usable cache: export into a temporary folder that lives as long as the returned graph."""
    import tempfile

    folder = tempfile.TemporaryDirectory(prefix="styler-onnx-")
    try:
        graph = export_entry(model_path, digest, loaded, Path(folder.name) / f"{model_path.stem}.onnx")
    except OSError as exc:
        folder.cleanup()
        raise BackendError(f"cannot write the ONNX export anywhere (cache: {reason}; temporary folder: {exc})"
                           ) from exc
    graph.source, graph.keepalive = "temporary", folder
    why = reason.strerror or type(reason).__name__
    graph.notes.append(f"ONNX cache {cache_dir()} is not writable ({why}: {reason.filename or ''}); exported "
                       f"{model_path.name} to a temporary folder for this run only (set STYLER_CACHE_DIR to a "
                       "writable folder to keep the export)")
    return graph


def _trusted(graph_path: Path, digest: str, source: str, fresh_only: bool) -> tuple[OnnxGraph | None, str]:
    found = load_trusted(graph_path, digest, fresh_only=fresh_only)
    if found.record is None:
        return None, found.reason
    return OnnxGraph(graph_path, found.data, found.record.meta, source), ""


def ensure_onnx(model_path: str | os.PathLike, loaded: LoadedModel | None = None) -> OnnxGraph:
    """A verified ONNX graph for a model file: shipped, cached, or exported now (see the module docstring)."""
    model_path = Path(model_path)
    sniff_container(model_path)  # a missing, empty or foreign model file is the user's error, torch or not
    digest = sha256_file(model_path)  # hashed once: a model file is megabytes
    shipped, _ = _trusted(shipped_paths(model_path)[0], digest, "shipped", fresh_only=False)
    if shipped is not None:
        return shipped
    missing = [name for name, present in (("torch", has_torch()), ("onnx", has_module("onnx"))) if not present]
    cache_graph = _cache_graph(model_path, digest)
    cached, why = _trusted(cache_graph, digest, "cache", fresh_only=not missing)
    if cached is not None:
        return cached
    if missing:
        where = f" (the cached graph was refused: {why})" if why and why != "absent" else ""
        if "torch" in missing:
            raise BackendError(install_hint(f"stylizing with {model_path.name}, which ships no ONNX graph{where},",
                                            missing))
        raise BackendError(f"exporting to ONNX needs the 'onnx' package (pip install onnx){where}")
    try:
        lock = _open_lock(cache_graph)
    except OSError as exc:
        return _export_to_temp(model_path, digest, loaded, exc)
    with lock, _locked(lock):
        cached, _ = _trusted(cache_graph, digest, "cache", fresh_only=True)  # another process may have just written it
        if cached is not None:
            return cached
        try:
            return export_entry(model_path, digest, loaded, cache_graph)
        except OSError as exc:  # e.g. the disk filled up while writing
            return _export_to_temp(model_path, digest, loaded, exc)

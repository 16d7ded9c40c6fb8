"""The OpenVINO cache: graphs derived from a model's ONNX export (rewritten fp32, calibrated int8), and compiled blobs.

Why a cache: building the int8 graph takes seconds (NNCF's calibration, then the quality gate); rewriting and checking
the fp32 graph takes ~0.3 s; OpenVINO's own compiled-model cache cuts compiling from ~0.1 s to ~0.04 s. A one-shot
``styler apply`` should pay none of that twice.

Layout, beside the ONNX cache of :mod:`styler.infer.onnx_export` (same base folder, ``$STYLER_CACHE_DIR`` included)::

    openvino/<stem>.xml, <stem>.bin, <stem>.json   a derived graph (OpenVINO IR) and its record
    openvino/compiled/                              OpenVINO's compiled-model cache (its own keys)

**Trust.** A record names what its graph was derived from (the model's sha256, the ONNX graph's sha256, the runtime
and recipe versions; for int8 also the CPU capability set) and the sha256 of the ``.xml`` and ``.bin`` files. An
entry is used only when every expected field matches and both files hash to the recorded values; the graph is then
read from the very bytes that were hashed. So a model file that changed (a new sha256), an ONNX export from another
recipe, another OpenVINO version, a half-written or corrupted entry, or an entry from another CPU is never run: it is
rebuilt. Writes are atomic (temporary names, then renames; the record last).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["ov_cache_dir", "compiled_cache_dir", "entry_path", "save_entry", "load_entry", "read_record",
           "openvino_version", "import_openvino"]

#: Bump when the layout or the meaning of a record changes.
CACHE_VERSION = 1


def import_openvino() -> Any:
    """``import openvino``, without the model-conversion tools its ``__init__`` pulls in.

    Why: ``openvino/__init__.py`` imports ``openvino.tools.ovc`` (model conversion, its argument parser's regular
    expressions and a telemetry client) inside ``try/except ImportError``, i.e. as optional; styler never converts
    models with it, and it costs ~85 ms of CPU in every process (measured: 0.13 s → 0.04 s for ``import openvino``),
    a sixth of a one-shot ``styler apply`` at 512². It is masked only for this import and unmasked right after, so
    anything that imports it later (NNCF, a user's code) gets the real module.
    """
    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    masked = "openvino.tools.ovc" not in sys.modules
    if masked:
        sys.modules["openvino.tools.ovc"] = None  # type: ignore[assignment]
    try:
        import openvino
    finally:
        if masked and "openvino.tools.ovc" in sys.modules and sys.modules["openvino.tools.ovc"] is None:
            del sys.modules["openvino.tools.ovc"]
    return openvino


def ov_cache_dir() -> Path:
    """``<styler cache>/openvino``, next to the ONNX cache (``$STYLER_CACHE_DIR`` etc., see ``onnx_export``)."""
    from styler.infer.onnx_export import cache_dir

    return cache_dir().parent / "openvino"


def compiled_cache_dir() -> Path:
    """Where OpenVINO keeps compiled models (``CACHE_DIR``); it keys them by graph, device and settings itself."""
    return ov_cache_dir() / "compiled"


def openvino_version() -> str:
    """The installed OpenVINO release, e.g. ``2026.4.1`` (build suffix dropped)."""
    return str(import_openvino().__version__).split("-")[0]


def entry_path(stem: str) -> Path:
    """The ``.xml`` path of the entry named ``stem`` (``.bin`` and ``.json`` lie beside it)."""
    return ov_cache_dir() / f"{stem}.xml"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_entry(xml: Path, model: Any, record: dict[str, Any]) -> None:
    """Write ``model`` (an ``openvino.Model``) as IR at ``xml`` with ``record`` (plus the files' hashes) beside it.

    Weights stay fp32 (``compress_to_fp16=False``: OpenVINO's default would round them to fp16, a change of the
    network we did not measure). Raises OSError when the cache cannot be written.
    """
    ov = import_openvino()
    xml.parent.mkdir(parents=True, exist_ok=True)
    tmp = xml.with_name(f".{xml.stem}.{os.getpid()}.tmp.xml")
    tmp_bin = tmp.with_suffix(".bin")
    try:
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        full = {**record, "cache_version": CACHE_VERSION, "xml_sha256": _sha256(tmp.read_bytes()),
                "bin_sha256": _sha256(tmp_bin.read_bytes())}
        os.replace(tmp_bin, xml.with_suffix(".bin"))
        os.replace(tmp, xml)
        meta = xml.with_name(f".{xml.stem}.{os.getpid()}.tmp.json")
        meta.write_text(json.dumps(full, sort_keys=True, indent=1, default=str))
        os.replace(meta, xml.with_suffix(".json"))
    finally:
        for leftover in (tmp, tmp_bin):
            if leftover.exists():
                leftover.unlink()


def read_record(xml: Path) -> dict[str, Any] | None:
    """The record beside ``xml`` as written, or None (absent or unreadable). Not a proof the graph is intact."""
    try:
        record = json.loads(xml.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def load_entry(xml: Path, expect: dict[str, Any], *, read: bool = True) -> tuple[Any, dict[str, Any]] | None:
    """``(model, record)`` for the entry at ``xml`` if its record matches ``expect`` and its files their hashes;
    else None (then the caller rebuilds it). The model is read from the verified bytes.

    ``read=False`` returns the verified entry's path instead of a model, for a graph that is only compiled: OpenVINO
    compiling a *path* with its compiled-model cache finds the compiled blob without parsing the graph (~20 ms of a
    one-shot 512² apply, measured). The hashes are checked just before; the compiled blob next to it is trusted
    the same way as any entry of this cache (it is the user's own cache folder)."""
    record = read_record(xml)
    if record is None or record.get("cache_version") != CACHE_VERSION:
        return None
    if any(record.get(key) != value for key, value in expect.items()):
        return None
    try:
        xml_bytes, bin_bytes = xml.read_bytes(), xml.with_suffix(".bin").read_bytes()
    except OSError:
        return None
    if _sha256(xml_bytes) != record.get("xml_sha256") or _sha256(bin_bytes) != record.get("bin_sha256"):
        return None
    if not read:
        return xml, record
    from styler.infer.backends.openvino import _core

    try:
        return _core().read_model(xml_bytes, bin_bytes), record
    except Exception:  # noqa: BLE001 - a graph OpenVINO cannot read is rebuilt like any other bad entry
        return None

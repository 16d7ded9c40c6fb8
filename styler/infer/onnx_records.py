"""The record beside every ONNX graph, and the rule that decides whether a graph may run (torch-free).

Why a record and a rule: a graph is a program ONNX Runtime executes, found by file name in a folder other processes
(and people) can write. The name says which model it claims to be for; only the record says what it *is*: the
sha256 of the model it was exported from, the sha256 and size of the graph itself, the opset and export recipe, the
versions of the exporter and runtime that made and checked it, and the parity error measured then. The rule
(:func:`load_trusted`) reads the graph's bytes once and accepts them only when they match that record, so a graph
copied over from another model, a truncated or corrupted graph, or a record left from an earlier export is never
run; the caller then opens its session from those same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from styler.io.files import atomic_write_bytes, sha256_bytes

__all__ = ["OPSET", "EXPORT_VERSION", "GraphRecord", "Lookup", "record_path", "installed_versions", "stale_reason",
           "load_trusted", "write_entry"]

OPSET = 17
EXPORT_VERSION = 1  # bump to invalidate caches when the export recipe changes
#: Largest record and graph read (a record is a few kB, a graph about the size of its model file).
MAX_RECORD_BYTES = 4 << 20
MAX_GRAPH_BYTES = 1 << 30
#: Packages whose versions a cached graph depends on: the exporter and the runtime that checked it.
_TRACKED = ("torch", "onnx", "onnxruntime")


@dataclass(frozen=True)
class GraphRecord:
    """What a graph is: see the module docstring. ``meta`` holds the model's ``name``, ``arch`` and ``metadata``."""

    model_sha256: str
    model_file: str
    onnx_sha256: str
    onnx_bytes: int
    opset: int
    export_version: int
    versions: dict[str, str | None]
    parity_max_abs: float
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"styler_graph_record": 1, **asdict(self)}, indent=1, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> GraphRecord:
        """Parse a record; ValueError for anything that is not one (wrong types included)."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("styler_graph_record") != 1:
            raise ValueError("not a styler graph record")
        fields: dict[str, Any] = {name: data.get(name) for name in cls.__dataclass_fields__}
        types: dict[str, type | tuple[type, ...]] = {
            "model_sha256": str, "model_file": str, "onnx_sha256": str, "onnx_bytes": int, "opset": int,
            "export_version": int, "versions": dict, "parity_max_abs": (int, float), "meta": dict}
        wrong = [name for name, kind in types.items() if not isinstance(fields[name], kind)]
        if wrong or not isinstance(fields["meta"].get("arch"), dict):
            raise ValueError(f"record fields of the wrong type: {', '.join(wrong) or 'meta.arch'}")
        return cls(**fields)


@dataclass
class Lookup:
    """The answer of :func:`load_trusted`: the record and verified bytes, or the reason they were refused."""

    record: GraphRecord | None = None
    data: bytes = b""
    reason: str = "absent"

    @property
    def ok(self) -> bool:
        return self.record is not None


def record_path(graph: Path) -> Path:
    """``X.onnx`` → ``X.onnx.json``."""
    return graph.with_name(graph.name + ".json")


def installed_versions() -> dict[str, str | None]:
    """Versions of the tracked packages as installed (from their metadata: nothing is imported)."""
    # Imported here: importlib.metadata (and the email parser it brings) costs ~10 ms, and a one-shot apply with a
    # shipped graph never asks for versions.
    from importlib import metadata as importlib_metadata

    versions: dict[str, str | None] = {}
    for name in _TRACKED:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def stale_reason(record: GraphRecord) -> str:
    """Why a trusted cached graph should be rebuilt (exporter or runtime changed since), or ``""``."""
    installed = installed_versions()
    changed = [f"{name} {record.versions.get(name)} → {installed[name]}" for name in ("torch", "onnxruntime")
               if installed[name] is not None and record.versions.get(name) != installed[name]]
    return f"stale ({', '.join(changed)})" if changed else ""


def _read_bounded(path: Path, limit: int) -> bytes:
    if path.stat().st_size > limit:
        raise ValueError(f"{path.name} is larger than {limit:,} bytes")
    return path.read_bytes()


def load_trusted(graph: Path, model_sha256: str, *, fresh_only: bool = False) -> Lookup:
    """The record and the bytes of ``graph`` if they are the export of the model with sha256 ``model_sha256``.

    Checked in order: both files exist; the record parses; it names this model; its opset and recipe are the
    current ones; the graph has the recorded size and sha256. ``fresh_only`` also refuses a graph made by other
    exporter/runtime versions than the installed ones (:func:`stale_reason`).
    """
    record_file = record_path(graph)
    if not (graph.is_file() and record_file.is_file()):
        return Lookup()
    try:
        record = GraphRecord.from_json(_read_bounded(record_file, MAX_RECORD_BYTES).decode("utf-8"))
    except (OSError, ValueError, TypeError, RecursionError) as exc:
        return Lookup(reason=f"unreadable record ({exc})")
    if record.model_sha256 != model_sha256:
        return Lookup(reason="the record names another model")
    if (record.opset, record.export_version) != (OPSET, EXPORT_VERSION):
        return Lookup(reason=f"made by another export recipe (opset {record.opset}, v{record.export_version})")
    if fresh_only and (stale := stale_reason(record)):
        return Lookup(reason=stale)
    try:
        if graph.stat().st_size != record.onnx_bytes or record.onnx_bytes > MAX_GRAPH_BYTES:
            return Lookup(reason="the graph does not have the recorded size (corrupt or replaced)")
        data = graph.read_bytes()
    except OSError as exc:
        return Lookup(reason=f"unreadable graph ({exc.strerror or exc})")
    if sha256_bytes(data) != record.onnx_sha256:
        return Lookup(reason="the graph does not match its recorded sha256 (corrupt or replaced)")
    return Lookup(record, data, "")


def write_entry(graph: Path, data: bytes, record: GraphRecord) -> None:
    """Write a graph, then its record, each atomically; a reader between the two sees a mismatch and refuses."""
    atomic_write_bytes(graph, data)
    atomic_write_bytes(record_path(graph), record.to_json().encode("utf-8"))

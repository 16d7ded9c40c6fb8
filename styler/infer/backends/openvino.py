"""OpenVINO backend: the exported network, rewritten for CPU kernels, in fp32, bf16 or calibrated int8. Torch-free.

Why OpenVINO: on CPUs its convolution kernels (oneDNN's brgemm, with AVX512-BF16, AMX and VNNI) run this network
faster than ONNX Runtime in every precision, it turns NNCF's calibrated int8 graphs into int8 kernels, and it imports
in ~0.1 s. Measured on a 2-core Zen 4 (AVX512-BF16 and VNNI), default half-width model at 1024², interleaved with
the peer network in ONNX Runtime: see ``scripts/bench_apply.py`` and :mod:`styler.devices`.

What it runs, from the model's ONNX export (:func:`styler.infer.onnx_export.ensure_onnx`):

* ``fp32``: the export after :mod:`styler.infer.ovgraph`'s exact rewrites, cached as OpenVINO IR;
* ``bf16``: the same graph with OpenVINO's bf16 inference precision (weights and activations rounded to bf16,
  norms and accumulations in fp32);
* ``int8``: that graph quantized by :mod:`styler.infer.quantize` (calibrated, gated, cached per model and CPU);
  whatever stays unquantized runs in bf16 where the CPU has it natively, else fp32;
* ``auto``: the fastest precision the CPU supports natively (:func:`styler.devices.native_cpu_precisions`) that
  is allowed for this model: int8 only when it passed its quality gate, then bf16, then fp32.

Compiled models go to OpenVINO's cache (:func:`styler.infer.ovcache.compiled_cache_dir`). It does not tile: the
stylizer hands images that need tiles to eager torch, as for ONNX Runtime.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from styler.devices import BF16_FLAGS, capability_key, cpu_capabilities, native_cpu_precisions
from styler.infer.backends.base import BackendError, ModelHandle
from styler.infer.onnx_export import INPUT_NAME, STYLE_NAME, ensure_onnx
from styler.io.files import sha256_file

__all__ = ["OpenVinoBackend", "OV_ACTIVATION_COST", "openvino_available", "Selection", "select", "describe",
           "MULTI_STYLE_INT8"]

#: Peak activation bytes per pixel per unit of network width, for the auto-tiling decision. Measured as peak RSS
#: growth of one untiled 1920×1080 pass: fp32 13.6 (width 16), bf16 9.1 / 6.7 (width 16 / 32), int8 8.1 / 5.9;
#: ONNX Runtime 27.9 / 26.3 on the same run (its constant is 40). 20 keeps the same margin.
OV_ACTIVATION_COST = 20


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


@functools.lru_cache(maxsize=1)
def _core() -> Any:
    from styler.infer.ovcache import import_openvino

    return import_openvino().Core()


@dataclass
class _Source:
    """The model's ONNX graph as this backend reads it (the bytes ``onnx_export`` verified), its sha256 and the
    model file's, and what the export said (metadata, notes, a temporary folder to keep alive)."""

    graph: bytes | str
    onnx_sha256: str
    model_sha256: str
    stem: str
    meta: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    keepalive: Any = None


def _source(model: ModelHandle) -> _Source:
    """Ask :mod:`styler.infer.onnx_export` for the graph (it finds, verifies or exports it) and key it."""
    assert model.path is not None
    found = ensure_onnx(model.path, model.loaded)
    return _Source(found.data, hashlib.sha256(found.data).hexdigest(), sha256_file(model.path),
                   Path(model.path).stem, found.meta, list(found.notes), found.keepalive)


class _Fp32:
    """The rewritten fp32 graph of one model, read (or built) on first use: when the cached int8 graph is what
    runs, a one-shot process never reads it."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.notes: list[str] = []
        self._model: Any = None

    def __call__(self) -> Any:
        if self._model is None:
            self._model, self.notes = _fp32_graph(self.source)
        return self._model


def _fp32_graph(source: _Source) -> tuple[Any, list[str]]:
    """The rewritten fp32 graph from the cache, or built from the export (and cached); ``(model, notes)``."""
    from styler.infer import ovcache, ovgraph

    version = ovcache.openvino_version()
    xml = ovcache.entry_path(f"{source.stem}-{source.model_sha256[:20]}-ov{version}-r{ovgraph.REWRITE_VERSION}")
    expect = {"kind": "fp32", "model_sha256": source.model_sha256, "onnx_sha256": source.onnx_sha256,
              "openvino": version, "rewrite_version": ovgraph.REWRITE_VERSION}
    found = ovcache.load_entry(xml, expect)
    if found is not None:
        return found[0], []
    model, notes, rewrites = ovgraph.optimize_for_cpu(source.graph)
    try:
        ovcache.save_entry(xml, model, {**expect, "rewrites": rewrites})
    except OSError as exc:
        notes.append(f"OpenVINO cache {xml.parent} is not writable ({exc.strerror or exc}); the graph is rebuilt "
                     "on every run")
    return model, notes


def _inference_hint(caps: frozenset[str]) -> str:
    """OpenVINO's precision for everything that is not int8: bf16 where native, else f32."""
    return "bf16" if caps & BF16_FLAGS else "f32"


def _compile(model: Any, hint: str, threads: int | None) -> Any:
    """Compile a graph (an OpenVINO model, or the path of a verified cache entry) for the CPU."""
    from styler.infer.ovcache import compiled_cache_dir

    if isinstance(model, Path):
        model = str(model)

    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    try:
        compiled_cache_dir().mkdir(parents=True, exist_ok=True)
        config["CACHE_DIR"] = str(compiled_cache_dir())
    except OSError:
        pass  # no compiled-model cache: compiling takes ~0.1 s more
    try:
        return _core().compile_model(model, "CPU", config)
    except Exception as exc:  # noqa: BLE001 - the runtime raises plain RuntimeError for everything
        raise BackendError(f"OpenVINO cannot compile this model: {str(exc).splitlines()[0][:200]}") from exc


def _inference_precision(compiled: Any) -> str:
    """What a compiled model computes its non-int8 layers in, as OpenVINO reports it: ``bf16`` or ``f32``."""
    from styler.infer.ovcache import import_openvino

    value = compiled.get_property("INFERENCE_PRECISION_HINT")
    return "bf16" if value == import_openvino().Type.bf16 else "f32"


@dataclass
class _Int8:
    """The int8 graph of one model for one CPU (None when it could not be built) and the gate's verdict."""

    model: Any
    gate: Any  # quantize.GateResult | None
    error: str | None
    fresh: bool  # built in this process (its verdict has not been reported before)


def _int8_graph(source: _Source, fp32: _Fp32, caps: frozenset[str], threads: int | None,
                build: bool = True) -> _Int8 | None:
    """The cached int8 graph and its gate verdict for this model and CPU; built, gated and cached on first use
    (``build``). None when it is neither cached nor allowed to be built."""
    from styler.infer import ovcache, ovgraph, quantize

    version = ovcache.openvino_version()
    hint = _inference_hint(caps)
    key = capability_key(caps)
    xml = ovcache.entry_path(f"{source.stem}-{source.model_sha256[:20]}-{key}-ov{version}-r{ovgraph.REWRITE_VERSION}"
                             f"-q{quantize.QUANT_VERSION}")
    expect = {"kind": "int8", "model_sha256": source.model_sha256, "onnx_sha256": source.onnx_sha256,
              "openvino": version, "rewrite_version": ovgraph.REWRITE_VERSION, "caps": key,
              "quant_version": quantize.QUANT_VERSION, "inference_precision": hint}
    found = ovcache.load_entry(xml, expect, read=False)  # only ever compiled: by path, see load_entry
    if found is not None:
        return _Int8(found[0], quantize.GateResult.from_dict(found[1]["gate"]), None, False)
    # NNCF's version only from here on: reading it imports importlib.metadata (~10 ms), which a cached graph
    # does not need.
    failure = ovcache.read_record(xml)
    if failure and failure.get("error") and {k: failure.get(k) for k in expect} == expect and \
            failure.get("nncf") == _nncf_version():
        return _Int8(None, None, str(failure["error"]), False)
    if not build:
        return None
    nncf_version = _nncf_version()
    try:
        model, verdict = _calibrate(fp32(), hint, threads)
    except BackendError as exc:
        if nncf_version is not None:  # a real failure: remember it so later runs do not retry for seconds
            _remember_failure(xml, {**expect, "nncf": nncf_version, "error": str(exc)})
        return _Int8(None, None, str(exc), True)
    with contextlib.suppress(OSError):  # uncached: the next run calibrates again (the fp32 entry said why)
        ovcache.save_entry(xml, model, {**expect, "nncf": nncf_version, "gate": verdict.to_dict()})
    return _Int8(model, verdict, None, True)


def _calibrate(fp32: Any, hint: str, threads: int | None) -> tuple[Any, Any]:
    """Quantize at each recipe level of :data:`~styler.infer.quantize.LEVELS` until one passes the gate; the last
    one tried and its verdict (a failing verdict when none passed). The first range estimator of
    :data:`~styler.infer.quantize.ESTIMATORS` that NNCF can run on this graph is used throughout."""
    from styler.infer import quantize

    expected = quantize.reference_outputs(_compile(fp32, "f32", threads))
    estimators = list(quantize.ESTIMATORS)
    for level in quantize.LEVELS:
        while True:
            try:
                model = quantize.quantize_model(fp32, level=level, estimator=estimators[0])
                break
            except BackendError:
                if len(estimators) == 1:
                    raise
                estimators.pop(0)
        verdict = quantize.gate(expected, _compile(model, hint, threads), hint, level=level, estimator=estimators[0])
        if verdict.passed:
            break
    return model, verdict


def _nncf_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nncf")
    except PackageNotFoundError:
        return None


def _remember_failure(xml: Path, record: dict[str, Any]) -> None:
    import json

    with contextlib.suppress(OSError):
        xml.parent.mkdir(parents=True, exist_ok=True)
        xml.with_suffix(".json").write_text(json.dumps(record, sort_keys=True, default=str))


@dataclass
class Selection:
    """What the backend runs and why: the graph, OpenVINO's inference precision, and sentences for the user."""

    precision: str  # fp32, bf16 or int8
    hint: str  # OpenVINO INFERENCE_PRECISION_HINT: f32 or bf16
    model: Any
    reason: str
    notes: list[str] = field(default_factory=list)
    gate: dict[str, Any] | None = None


#: Folded multi-style graphs kept per backend (one per style mix, most recently used first to stay).
MAX_FOLDED_MIXES = 4

#: Why a multi-style model has no int8 graph: the calibration set and the quality gate feed images only, and one
#: int8 graph would have to hold its quality for every style and every blend of them.
MULTI_STYLE_INT8 = "int8 is not calibrated for multi-style models (one gate would have to cover every style and blend)"


def select(precision: str, source: _Source, fp32: _Fp32, caps: frozenset[str], threads: int | None,
           multi_style: bool = False) -> Selection:
    """Resolve ``precision`` (``auto``, ``fp32``, ``bf16``, ``int8``) for this model on a CPU with ``caps``."""
    if multi_style and precision == "int8":
        raise BackendError(f"{MULTI_STYLE_INT8}; use --precision bf16 or fp32")
    if multi_style and precision == "auto":
        return _select_float(caps, fp32, [f"int8 skipped: {MULTI_STYLE_INT8}"] if "int8" in
                             native_cpu_precisions(caps) else [], [])
    if precision == "fp32":
        return Selection("fp32", "f32", fp32(), "fp32 requested")
    if precision == "bf16":
        notes = [] if caps & BF16_FLAGS else ["bf16 is not native on this CPU (no AVX512-BF16 or AMX): OpenVINO "
                                              "emulates it, slower than fp32"]
        return Selection("bf16", "bf16", fp32(), "bf16 requested", notes)
    if precision == "int8":
        int8 = _int8_graph(source, fp32, caps, threads)
        assert int8 is not None
        if int8.model is None:
            raise BackendError(int8.error or "int8 is unavailable")
        notes = [] if int8.gate.passed else [f"{int8.gate.sentence()}; running it because --precision int8 asks"]
        return Selection("int8", _inference_hint(caps), int8.model, "int8 requested", notes, int8.gate.to_dict())
    return _select_auto(source, fp32, caps, threads)


def _select_auto(source: _Source, fp32: _Fp32, caps: frozenset[str], threads: int | None) -> Selection:
    """The first of :func:`~styler.devices.native_cpu_precisions` this model may run in."""
    skipped: list[str] = []
    notes: list[str] = []
    for candidate in native_cpu_precisions(caps):
        if candidate == "int8":
            from styler.infer.quantize import nncf_available

            int8 = _int8_graph(source, fp32, caps, threads, build=nncf_available())
            if int8 is None:
                skipped.append("int8 skipped: not calibrated yet and NNCF is not installed (pip install nncf)")
            elif int8.model is None:
                skipped.append(f"int8 skipped: {int8.error}")
            elif not int8.gate.passed:
                skipped.append(f"int8 kept off: {int8.gate.sentence()}")
                if int8.fresh:  # said once, when the gate ran; the cached verdict stays in the selection
                    notes.append(f"{source.stem}: {int8.gate.sentence()}; it keeps "
                                 f"{'bf16' if caps & BF16_FLAGS else 'fp32'} on this CPU")
            else:
                return Selection("int8", _inference_hint(caps), int8.model,
                                 f"int8: native on this CPU ({capability_key(caps)}); {int8.gate.sentence()}",
                                 notes, int8.gate.to_dict())
        elif candidate == "bf16":
            break
    return _select_float(caps, fp32, skipped, notes)


def _select_float(caps: frozenset[str], fp32: _Fp32, skipped: list[str], notes: list[str]) -> Selection:
    """bf16 where the CPU computes it natively, else fp32; ``skipped`` says why nothing faster was chosen."""
    if "bf16" in native_cpu_precisions(caps):
        return Selection("bf16", "bf16", fp32(), "; ".join([*skipped, "bf16: native on this CPU"]), notes)
    return Selection("fp32", "f32", fp32(), "; ".join([*skipped, "fp32: no native bf16 or int8 on this CPU"]), notes)


class OpenVinoBackend:
    """The rewritten network in OpenVINO on CPU; see :class:`~styler.infer.backends.base.Backend`.

    Besides the protocol's attributes: ``selection`` (precision, OpenVINO's inference precision, the reason and the
    int8 gate's verdict, as a dict for ``--json``) and ``capabilities`` (the CPU capability set it chose for).
    """

    name = "openvino"
    tiles = False
    activation_cost = OV_ACTIVATION_COST

    def __init__(self, model: ModelHandle, *, device: str, threads: int | None = None,
                 precision: str = "auto") -> None:
        if device != "cpu" or model.path is None:
            raise BackendError(f"the openvino backend runs on CPU only (device {device}); use --backend torch")
        if not openvino_available():
            raise BackendError("openvino is not installed (pip install openvino)")
        self.model = model
        self.device = device
        source = _source(model)
        model.meta = source.meta
        norm = (source.meta.get("arch") or {}).get("norm", {})
        #: A multi-style graph's style count: its second input is the style mix (fp32 and bf16; no int8 graph).
        self._styles = int(norm.get("num_styles") or 0) if norm.get("kind") == "conditional" else 0
        self._keepalive = source.keepalive  # a temporary export's folder lives as long as this backend
        fp32 = _Fp32(source)
        self.capabilities = cpu_capabilities()
        chosen = select(precision, source, fp32, self.capabilities, threads, multi_style=bool(self._styles))
        self.notes: list[str] = [*source.notes, *fp32.notes, *chosen.notes]
        self._compiled = _compile(chosen.model, chosen.hint, threads)
        ran = _inference_precision(self._compiled)
        self.precision = "fp32" if chosen.precision == "bf16" and ran != "bf16" else chosen.precision
        self.selection = {"precision": self.precision, "inference_precision": ran, "reason": chosen.reason,
                          "int8_gate": chosen.gate, "cpu_capabilities": capability_key(self.capabilities)}
        self._request = self._compiled.create_infer_request()
        # Multi-style: the graph a style mix is folded into, compiled once that mix is used a second time (a
        # one-photo `apply` never pays the extra compile; a folder, a video or the web server gets the faster graph
        # from its second image on). Keyed by the mix's bytes, the most recent few kept.
        # (select() gives a multi-style model its fp32 graph object: never a cached int8 file path)
        self._foldable = chosen.model if self._styles else None
        self._hint, self._threads = chosen.hint, threads
        self._specialized: collections.OrderedDict[bytes, Any] = collections.OrderedDict()
        self._mix_uses: dict[bytes, int] = {}

    def run(self, batch: np.ndarray) -> np.ndarray:
        feeds = {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}
        request = self._request
        if self._styles:
            mix = self.model.style_mix
            if mix is None:  # the model's first style
                mix = np.eye(self._styles, dtype=np.float32)[0]
            mix = np.ascontiguousarray(mix, dtype=np.float32)
            folded = self._folded_request(mix)
            if folded is not None:
                request = folded
            else:
                feeds[STYLE_NAME] = mix
        out = request.infer(feeds)[0]
        return np.array(out, dtype=np.float32, copy=True)  # the request reuses its output buffer

    def _folded_request(self, mix: np.ndarray) -> Any:
        """The request of the graph with ``mix`` folded in, built on the mix's second use; None: run the general
        graph with the mix as an input."""
        key = mix.tobytes()
        if key in self._specialized:
            self._specialized.move_to_end(key)
            return self._specialized[key]
        self._mix_uses[key] = self._mix_uses.get(key, 0) + 1
        if self._foldable is None or self._mix_uses[key] < 2:
            return None
        from styler.infer import ovgraph

        try:
            request = _compile(ovgraph.fold_input(self._foldable, STYLE_NAME, mix), self._hint,
                               self._threads).create_infer_request()
        except Exception as exc:  # noqa: BLE001 - folding is an optimization: the general graph stays correct
            self._foldable = None
            self.notes.append(f"style mix not folded into the graph ({str(exc).splitlines()[0][:120]}); the "
                              "general multi-style graph runs")
            return None
        self._specialized[key] = request
        while len(self._specialized) > MAX_FOLDED_MIXES:
            self._specialized.popitem(last=False)
        return request


def describe(model_path: str | Path, norm_kind: str | None = None) -> dict[str, Any]:
    """What ``--backend auto`` runs for a model file on this CPU, read from the caches only (nothing is exported,
    calibrated or compiled, torch is not imported): for ``styler info``. ``runs`` is None when the int8 verdict is
    not known yet (the first ``styler apply`` measures it). ``norm_kind``: the model's norm, when the caller has
    read it (a multi-style model, ``conditional``, has no int8 graph: see :data:`MULTI_STYLE_INT8`)."""
    from styler.infer import ovcache, ovgraph, quantize

    caps = cpu_capabilities()
    out: dict[str, Any] = {"cpu_capabilities": capability_key(caps),
                           "native_precisions": list(native_cpu_precisions(caps)),
                           "openvino": openvino_available(), "runs": None, "int8_gate": None}
    fallback = "openvino bf16" if caps & BF16_FLAGS else "openvino fp32"
    if not openvino_available():
        out["runs"] = "onnx fp32"
        return out
    if norm_kind == "conditional":
        out["runs"] = fallback
        return out
    digest = sha256_file(model_path)
    stem = (f"{Path(model_path).stem}-{digest[:20]}-{capability_key(caps)}-ov{ovcache.openvino_version()}"
            f"-r{ovgraph.REWRITE_VERSION}-q{quantize.QUANT_VERSION}")
    record = ovcache.read_record(ovcache.entry_path(stem)) if "int8" in native_cpu_precisions(caps) else None
    if "int8" not in native_cpu_precisions(caps):
        out["runs"] = fallback
    elif record is not None and record.get("model_sha256") == digest and isinstance(record.get("gate"), dict):
        out["int8_gate"] = record["gate"]
        out["runs"] = "openvino int8" if record["gate"].get("passed") else fallback
    elif record is not None and record.get("error"):
        out["runs"], out["int8_error"] = fallback, record["error"]
    return out

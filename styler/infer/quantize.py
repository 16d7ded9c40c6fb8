"""int8 for the OpenVINO backend: post-training quantization calibrated on shipped photos, a quality gate on others.

Why int8: on CPUs with an int8 dot-product instruction (VNNI, AVX-VNNI, AMX-INT8, Arm dot product) an int8
convolution does 2x the multiply-adds of a bf16 one per instruction and 4x those of fp32. Why NNCF: its
post-training quantization for OpenVINO graphs already does what a careful hand-written pass would (per-output-
channel symmetric int8 weights, per-tensor activations with calibrated ranges, bias correction) and OpenVINO's CPU
plugin turns its FakeQuantize nodes into int8 kernels; rewriting that would only add bugs.

The recipe (:func:`quantize_model`), and why each choice:

* **Activations calibrated by histogram** (NNCF's ``HISTOGRAM`` range estimator, which picks the clipping range that
  minimizes the quantization error of the observed distribution) on :data:`CALIBRATION_DIR` ``/calibrate``: 16
  photos shipped with the package. Min-max ranges are set by a few extreme pixels and cost resolution everywhere
  else (measured on the default model, 20 evaluation photos at 512 px: 44.9 dB with mean min-max, 46.3 with the
  histogram).
* **Only convolutions are quantized** (:data:`IGNORED_TYPES`): NNCF's mixed preset would also quantize the inputs
  of elementwise and reduction ops. Before a norm that is fatal: a convolution's output *before* instance norm has
  a range that varies from photo to photo by orders of magnitude, and one fixed int8 range for it loses flat photos
  entirely, since the norm then amplifies the rounding noise (the default model: 39.7 dB mean and 29 dB on a photo
  of sky with it, 46 dB mean without); a norm exported as arithmetic (group, layer norm through a Reshape;
  switchable norm as means, powers and square roots) would have its statistics themselves rounded (starry_night_sn:
  35.8 dB, gate failed; with only convolutions quantized 48.6 dB). The residual sums stay bf16/fp32 too (default
  model: gate 49.4 → 51.8 dB, time unchanged). After a norm the activations are normalized and quantize well, so
  every convolution still runs in int8.
* **The encoder's strided convolutions stay in higher precision** (:func:`sensitive_convolutions`, level 1): rounding
  noise added early passes through every later instance norm and grows on flat photos; keeping these two small
  convolutions (5 % of the arithmetic) out of int8 raised the worst evaluation photo from 37.0 to 40.6 dB. If the
  gate still fails, level 2 also keeps the first convolution after them, then the model stays bf16/fp32.
* **First and last convolution stay int8**: keeping them in bf16 changed PSNR by ≤ 0.5 dB (measured both ways, mean
  of 20 photos) and they are, after :mod:`styler.infer.ovgraph`'s rewrites, a quarter of the arithmetic.
* **No overflow fix**: NNCF's 7-bit weights for the first layer exist for CPUs without VNNI, which never run int8
  here (:func:`styler.devices.native_cpu_precisions`).

**The gate** (:func:`gate`): the int8 graph, compiled exactly as it will run, against the fp32 graph on
:data:`CALIBRATION_DIR` ``/gate``: 8 other shipped photos, never used for calibration. It passes when the PSNR of
all gate pixels together is at least :data:`GATE_PSNR_DB`; otherwise the model keeps bf16/fp32 (with a note). The
verdict is cached with the graph (:mod:`styler.infer.ovcache`), keyed by the model's sha256 (and its ONNX graph's),
the CPU capability set, the OpenVINO version and this recipe's version; NNCF's version is recorded beside it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from styler.infer.backends.base import BackendError
from styler.infer.ovgraph import sink_quantizers

__all__ = ["CALIBRATION_DIR", "GATE_PSNR_DB", "QUANT_VERSION", "LEVELS", "ESTIMATORS", "GateResult", "nncf_available",
           "load_photos", "sensitive_convolutions", "quantize_model", "reference_outputs", "gate", "psnr_db"]

#: The shipped photos: ``calibrate/`` sets the activation ranges, ``gate/`` judges the result (``CREDITS.md``).
CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"
#: int8 must stay within this PSNR of fp32 on the gate photos to become a model's default precision.
GATE_PSNR_DB = 40.0
#: Bump when the recipe changes: part of the cache key of every int8 graph.
QUANT_VERSION = 2
#: Recipe levels tried in order until one passes the gate (:func:`sensitive_convolutions`).
LEVELS = (1, 2)
#: Activation range estimators, preferred first. NNCF's histogram fails on a tensor whose observed range is empty
#: ("Cannot create 2048 finite-sized bins"; the switchable-norm model has one), and the mean of per-photo min/max
#: is then the fallback.
ESTIMATORS = ("histogram", "mean-minmax")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Ops whose inputs are never quantized, so that only convolutions run in int8 (see the module docstring): the
#: norms (MVN, and the Reshape the exporter puts in front of a group or layer norm's MVN), the arithmetic of norms
#: exported op by op and of the residual sums, and the DepthToSpace that ends a rewritten convolution
#: (:mod:`styler.infer.ovgraph`), whose input is the network's output or a norm's input.
IGNORED_TYPES = ["MVN", "Reshape", "DepthToSpace", "Add", "Multiply", "Subtract", "Divide", "Power", "Sqrt",
                 "ReduceMean", "Convert"]


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict: PSNR (dB) of the int8 graph against fp32 over all gate pixels, its worst photo, and the
    inference precision the rest of the graph ran in (``bf16`` or ``f32``)."""

    psnr_db: float
    worst_db: float
    photos: int
    threshold_db: float
    inference_precision: str
    level: int = 1  # recipe level (:func:`sensitive_convolutions`)
    estimator: str = "histogram"  # activation range estimator (:data:`ESTIMATORS`)

    @property
    def passed(self) -> bool:
        return self.psnr_db >= self.threshold_db

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        return cls(float(data["psnr_db"]), float(data["worst_db"]), int(data["photos"]), float(data["threshold_db"]),
                   str(data["inference_precision"]), int(data.get("level", 1)),
                   str(data.get("estimator", "histogram")))

    def sentence(self) -> str:
        verdict = "passes" if self.passed else "fails"
        return (f"int8 {verdict} the quality gate: {self.psnr_db:.1f} dB PSNR against fp32 on {self.photos} held-out "
                f"photos (worst {self.worst_db:.1f} dB; needs ≥ {self.threshold_db:.0f} dB)")


def nncf_available() -> bool:
    return importlib.util.find_spec("nncf") is not None


def load_photos(kind: str, folder: Path = CALIBRATION_DIR) -> list[np.ndarray]:
    """The shipped ``kind`` photos (``calibrate`` or ``gate``) as ``1×3×H×W`` float32 in [0, 1], cropped to
    multiples of 4 (the graphs' input contract), in file-name order."""
    from PIL import Image

    photos = []
    for path in sorted(p for p in (folder / kind).iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        height, width = rgb.shape[0] // 4 * 4, rgb.shape[1] // 4 * 4
        photos.append(np.ascontiguousarray(rgb[:height, :width].transpose(2, 0, 1)[None]))
    if not photos:
        raise BackendError(f"no {kind} photos in {folder / kind}: the package is incomplete")
    return photos


def psnr_db(mse: float) -> float:
    """PSNR of images in [0, 1] from their mean squared error (capped at 200 dB for identical images)."""
    return 200.0 if mse <= 1e-20 else float(10.0 * np.log10(1.0 / mse))


def sensitive_convolutions(model: Any, level: int) -> list[str]:
    """Names of the convolutions kept out of int8 at recipe ``level`` (0: none; 1: the strided ones, i.e. the
    encoder's downsampling; 2: also the first convolution after them, the one reading the encoder's output).

    Why the encoder: rounding noise added there passes through every later instance norm, each of which rescales
    it by the inverse of a feature's spread, so on flat photos (a sky) it grows; noise added late is not amplified.
    Measured on the default model, 20 evaluation photos at full size: worst photo 37.0 dB with every convolution in
    int8, 40.6 dB at level 1, 42.0 dB at level 2, at a cost within the noise of the timings in bf16.
    """
    convs = [op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    strided = [i for i, op in enumerate(convs) if any(int(v) > 1 for v in op.get_attributes().get("strides", []))]
    if level <= 0 or not strided:
        return []
    keep = [convs[i] for i in strided] + (convs[strided[-1] + 1:strided[-1] + 2] if level >= 2 else [])
    return [op.get_friendly_name() for op in keep]


def quantize_model(model: Any, photos: list[np.ndarray] | None = None, level: int = 1,
                   estimator: str = "histogram") -> Any:
    """The int8 graph of ``model`` (an fp32 ``openvino.Model``, not modified) by the recipe of the module
    docstring, with :func:`sensitive_convolutions` at ``level`` kept in higher precision. ``estimator``: one of
    :data:`ESTIMATORS` (activation ranges).

    Raises :class:`BackendError` when NNCF is not installed or cannot quantize this graph.
    """
    if not nncf_available():
        raise BackendError("int8 needs NNCF to calibrate the model once (pip install nncf)")
    photos = load_photos("calibrate") if photos is None else photos
    # NNCF imports torch when it is installed, and torch logs a CUDA warning; NNCF draws progress bars on stdout,
    # which may be the image stream of `styler apply - -o -`. Neither belongs in the user's output.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import nncf
            from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
            from nncf.quantization.range_estimator import RangeEstimatorParametersSet

            nncf.set_log_level(logging.ERROR)
            ranges = {"histogram": RangeEstimatorParametersSet.HISTOGRAM,
                      "mean-minmax": RangeEstimatorParametersSet.MEAN_MINMAX}[estimator]
            params = AdvancedQuantizationParameters(activations_range_estimator_params=ranges,
                                                    overflow_fix=OverflowFix.DISABLE)
            ignored = nncf.IgnoredScope(names=sensitive_convolutions(model, level), types=IGNORED_TYPES,
                                        validate=False)
            quantized = nncf.quantize(model.clone(), nncf.Dataset(photos), subset_size=len(photos),
                                      preset=nncf.QuantizationPreset.MIXED, target_device=nncf.TargetDevice.CPU,
                                      ignored_scope=ignored, advanced_parameters=params)
        sink_quantizers(quantized)
        return quantized
    except Exception as exc:  # noqa: BLE001 - NNCF fails in many ways on graphs it does not expect
        raise BackendError(f"NNCF could not quantize this model: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from exc


def _run_all(compiled: Any, photos: list[np.ndarray]) -> list[np.ndarray]:
    request = compiled.create_infer_request()
    return [np.clip(request.infer({0: photo})[0], 0.0, 1.0) for photo in photos]


def gate(expected: list[np.ndarray], candidate: Any, inference_precision: str,
         photos: list[np.ndarray] | None = None, threshold_db: float = GATE_PSNR_DB, level: int = 1,
         estimator: str = "histogram") -> GateResult:
    """Judge compiled ``candidate`` (int8, built at recipe ``level``) against the fp32 graph's outputs
    ``expected`` (:func:`reference_outputs`) on the gate photos (clamped outputs, as written to disk)."""
    photos = load_photos("gate") if photos is None else photos
    errors = [float(np.mean((a - b) ** 2)) for a, b in zip(expected, _run_all(candidate, photos))]
    weights = [photo.shape[2] * photo.shape[3] for photo in photos]
    pooled = float(np.average(errors, weights=weights))
    return GateResult(psnr_db(pooled), min(psnr_db(e) for e in errors), len(photos), threshold_db,
                      inference_precision, level, estimator)


def reference_outputs(reference: Any, photos: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The fp32 graph's clamped outputs on the gate photos (computed once for every recipe level tried)."""
    return _run_all(reference, load_photos("gate") if photos is None else photos)

"""Stylizing images with a trained model: sizing, colour preservation, strength, batching, tiling and backends.

The library behind ``styler apply``; the CLI only parses options and calls :class:`Stylizer`.

Backends (``backend=``):

* ``"torch"``: eager fp32 :class:`~styler.nn.network.TransformerNet` on ``cpu``/``cuda``/``mps``; the reference path,
  and the only one that tiles large images.
* ``"onnx"``: ONNX Runtime on CPU (:mod:`styler.infer.onnx_backend`); the model is exported once and cached, after which a
  process never imports torch. Parity with torch is checked at export time and in the tests.
* ``"compiled"``: ``torch.compile`` of the network, in bf16 with channels_last where bf16 is native (CUDA; CPUs with
  Intel AMX or AVX512-BF16), else fp32. The fastest per image by far on such a CPU (1024², half width, two threads:
  235 ms against 934 ms for ONNX Runtime fp32; ``scripts/bench_apply.py --compiled``), but every new image size
  compiles first (~20–50 s on 2 CPU cores; inductor caches on disk), and it needs a C++ compiler on CPU. For
  long-lived processes and many images of one size (frames of a video, a folder of camera photos), not for one-shot
  CLI calls. If compiling fails the stylizer falls back to eager torch and says so in ``notes``.
* ``"auto"`` (default): ``onnx`` on CPU when onnxruntime is installed and the export works, otherwise ``torch``.
  Images that need tiling always run on eager fp32 torch.

Precision (``precision=``, torch and compiled backends): ``"auto"`` is fp32 for ``torch`` and bf16-where-native for
``compiled``; ``"fp32"`` / ``"bf16"`` force one. Measured on the shipped default model against fp32: compiled bf16
max |Δ| 0.008 at 1024² (PSNR 58 dB); eager bf16 PSNR 51 dB on Kodak photos (worst pixel 0.08); the perceptual loss is
unchanged to 3 digits, so the picture is the same.

Pipeline for one image: decode (:mod:`styler.io.images`) → resize to the processing size (``scale``, then
``max_size`` caps the long side; default: the input's size) → network (reflection padded to a multiple of 4 and
cropped back; tiled with whole-image statistics when the estimated activation memory exceeds ``memory_budget``) →
optional colour preservation (luminance from the stylized image, chroma from the photo, in YCbCr or CIE Lab) →
strength blend ``photo + s·(stylized − photo)`` → alpha re-attached → encode. Everything outside the network is
numpy, so the ONNX path needs no torch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from styler.devices import DEVICES, resolve_device
from styler.errors import ModelFileError, StylerError
from styler.io.images import RGBImage, resize_image
from styler.io.zoo import default_model, find_model, model_search_dirs

__all__ = ["StylizeOptions", "Stylizer", "find_model", "default_model", "model_search_dirs", "processing_size",
           "preserve_color", "blend_strength", "rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_lab", "lab_to_rgb",
           "stylize_image", "stylize_tensor", "resolve_device", "BACKENDS", "DEVICES", "COLOR_SPACES", "PRECISIONS"]

BACKENDS = ("auto", "torch", "onnx", "compiled")
PRECISIONS = ("auto", "fp32", "bf16")
COLOR_SPACES = ("ycbcr", "lab")
GIB = 1 << 30


# --- sizes and colour -----------------------------------------------------------------------------------------------

def processing_size(size: tuple[int, int], *, max_size: int | None = None, scale: float | None = None
                    ) -> tuple[int, int]:
    """(width, height) to stylize at: ``size`` × ``scale``, then the long side capped at ``max_size``."""
    width, height = size
    if scale is not None and scale != 1:
        if scale <= 0:
            raise ValueError("scale must be positive")
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    if max_size and max(width, height) > max_size:
        factor = max_size / max(width, height)
        width, height = max(1, round(width * factor)), max(1, round(height * factor))
    if min(width, height) < 8:
        raise StylerError(f"image would be {width}×{height} px; the network needs at least 8×8 (raise --max-size "
                          "or --scale)")
    return width, height


_YCBCR = np.array([[0.299, 0.587, 0.114],
                   [-0.168735892, -0.331264108, 0.5],
                   [0.5, -0.418687589, -0.081312411]], dtype=np.float64)  # BT.601 full range (JPEG)
_YCBCR_INV = np.linalg.inv(_YCBCR)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB [0, 1] → Y in [0, 1], Cb/Cr in [−0.5, 0.5] (BT.601 full range)."""
    return (rgb @ _YCBCR.T.astype(np.float32)).astype(np.float32)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    return (ycc @ _YCBCR_INV.T.astype(np.float32)).astype(np.float32)


_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])  # sRGB primaries, D65
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE = _RGB_TO_XYZ.sum(axis=1)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((np.maximum(c, 0) + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.maximum(c, 0) ** (1 / 2.4) - 0.055)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB [0, 1] → CIE L*a*b* (D65)."""
    xyz = (_srgb_to_linear(np.clip(rgb, 0, 1).astype(np.float64)) @ _RGB_TO_XYZ.T) / _WHITE
    delta = 6 / 29
    f = np.where(xyz > delta ** 3, np.cbrt(xyz), xyz / (3 * delta ** 2) + 4 / 29)
    lab = np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)
    return lab.astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    lab = lab.astype(np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    delta = 6 / 29
    xyz = np.where(f > delta, f ** 3, 3 * delta ** 2 * (f - 4 / 29)) * _WHITE
    return _linear_to_srgb(xyz @ _XYZ_TO_RGB.T).astype(np.float32)


def preserve_color(photo: np.ndarray, stylized: np.ndarray, space: str = "ycbcr") -> np.ndarray:
    """Keep the photo's colours: luminance of ``stylized`` with the chroma of ``photo`` (both H×W×3 in [0, 1])."""
    if space == "ycbcr":
        out = rgb_to_ycbcr(photo)
        out[..., 0] = rgb_to_ycbcr(np.clip(stylized, 0, 1))[..., 0]
        return np.clip(ycbcr_to_rgb(out), 0, 1)
    if space == "lab":
        out = rgb_to_lab(photo)
        out[..., 0] = rgb_to_lab(np.clip(stylized, 0, 1))[..., 0]
        return np.clip(lab_to_rgb(out), 0, 1)
    raise ValueError(f"unknown colour space {space!r}; choose from {', '.join(COLOR_SPACES)}")


def blend_strength(photo: np.ndarray, stylized: np.ndarray, strength: float) -> np.ndarray:
    """``photo + strength·(stylized − photo)``: 0 returns the photo, 1 the stylized image."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if strength == 1.0:
        return np.clip(stylized, 0, 1)
    if strength == 0.0:
        return photo.copy()
    return np.clip(photo + np.float32(strength) * (np.clip(stylized, 0, 1) - photo), 0, 1)


# --- the stylizer ---------------------------------------------------------------------------------------------------

@dataclass
class StylizeOptions:
    """Per-image options of :meth:`Stylizer.stylize` (see ``styler apply --help``)."""

    max_size: int | None = None
    scale: float | None = None
    preserve_color: str | None = None  # None, "ycbcr" or "lab"
    strength: float = 1.0
    tile_size: int | None = None  # None: automatic (by memory_budget); 0: never tile; N: tiles of N px
    memory_budget: float = 2.0  # GiB of network activations before tiling kicks in (auto)
    stats_max_pixels: int | None = None  # statistics pass size when tiling; None: derived from memory_budget


@dataclass
class StylizeResult:
    image: RGBImage
    seconds: float
    tiled: bool
    backend: str
    warnings: list[str] = field(default_factory=list)


def _pad4(batch: np.ndarray) -> np.ndarray:
    pad_h, pad_w = (-batch.shape[2]) % 4, (-batch.shape[3]) % 4
    if pad_h or pad_w:
        batch = np.pad(batch, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode="reflect")
    return batch


class Stylizer:
    """A model ready to stylize: the model file, a device and a backend, loaded once and reused for every image.

    Args:
        model: a path, a model name, None for the default model, or an already loaded
            :class:`~styler.io.modelfile.LoadedModel`.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        backend: ``auto``, ``torch``, ``onnx`` or ``compiled`` (see the module docstring).
        threads: intra-op threads (None: the runtime's default).
        precision: ``auto``, ``fp32`` or ``bf16`` for the torch and compiled backends (module docstring).
    """

    def __init__(self, model: Any = None, *, device: str = "auto", backend: str = "auto",
                 threads: int | None = None, precision: str = "auto") -> None:
        if backend not in BACKENDS:
            raise StylerError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        if precision not in PRECISIONS:
            raise StylerError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
        if precision == "bf16" and backend in ("auto", "onnx"):
            raise StylerError("bf16 runs on the torch or compiled backend; add --backend compiled (or torch)")
        self.notes: list[str] = []
        self._loaded: Any = None
        self._runner: Any = None
        self._fast_net: Any = None  # the network as run_batch calls it: bf16 and/or compiled, or None (eager fp32)
        self._fast_fallback: Any = None  # eager copy of _fast_net, used if compiling fails
        self.precision = "fp32"
        self._channels_last = False  # bf16 inputs go channels_last (what oneDNN's AMX and cuDNN kernels want)
        self.threads = threads
        if model is not None and hasattr(model, "net") and hasattr(model, "arch"):
            self._loaded = model
            self.model_path: Path | None = model.path
        else:
            self.model_path = find_model(model)
        self.device = resolve_device(device)
        self.backend = "torch"
        self.meta: dict[str, Any] = {}
        if backend in ("auto", "onnx") and self.device == "cpu" and self.model_path is not None:
            try:
                from styler.infer.onnx_backend import OnnxRunner, ensure_onnx, onnxruntime_available

                if not onnxruntime_available():
                    raise StylerError("onnxruntime is not installed")
                onnx_path, self.meta = ensure_onnx(self.model_path, self._loaded)
                self._runner = OnnxRunner(onnx_path, threads=threads)
                self.backend = "onnx"
            except ModelFileError:
                raise
            except StylerError as exc:
                if backend == "onnx":
                    raise
                self.notes.append(f"ONNX Runtime backend unavailable ({exc}); using torch")
        elif backend == "onnx":
            raise StylerError(f"the onnx backend runs on CPU only (device {self.device}); use --backend torch")
        if self.backend == "torch":
            self._load_torch()
            self._prepare_fast_net(compiled=backend == "compiled", precision=precision)
            if backend == "compiled":
                self.backend = "compiled"

    def _prepare_fast_net(self, *, compiled: bool, precision: str) -> None:
        """The bf16 and/or compiled copy of the network that untiled batches run on (tiles keep the fp32 net)."""
        import copy

        import torch

        from styler.devices import bf16_is_fast

        device = torch.device(self.device)
        if precision == "auto":
            precision = "bf16" if compiled and bf16_is_fast(device.type) else "fp32"
        self.precision = precision
        if not compiled and precision == "fp32":
            return
        net = self._loaded.net
        if precision == "bf16":
            net = copy.deepcopy(net).to(torch.bfloat16)
            self._channels_last = device.type in ("cpu", "cuda")
            if self._channels_last:
                net = net.to(memory_format=torch.channels_last)
        # Static shapes: the fastest kernels; each new size recompiles (torch caps this and then runs eager).
        self._fast_net = torch.compile(net, dynamic=False) if compiled else net
        self._fast_fallback = net if compiled else None

    # -- model ---------------------------------------------------------------------------------------------------
    def _load_torch(self) -> Any:
        if self._loaded is None:
            from styler.io.modelfile import load_model

            self._loaded = load_model(self.model_path)
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        self._loaded.net.to(self.device).eval()
        if not self.meta:
            self.meta = {"name": self._loaded.name, "arch": self._loaded.arch.to_dict(),
                         "metadata": self._loaded.metadata}
        return self._loaded

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or (self.model_path.stem if self.model_path else "model"))

    @property
    def width(self) -> int:
        return int(self.meta.get("arch", {}).get("width", 32))

    def activation_bytes(self, height: int, width: int) -> int:
        """Estimated peak activation memory of one untiled pass (measured: ~0.9 GiB/MP at width 32 in eager torch,
        ~1.2 GiB/MP in onnxruntime; ``docs/performance.md`` §6), scaling with the network width."""
        per_px = (40 if self.backend == "onnx" else 30) * self.width
        return int(math.ceil(height / 4) * 4 * math.ceil(width / 4) * 4 * per_px)

    # -- running the network --------------------------------------------------------------------------------------
    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        """Network on ``N×3×H×W`` float32 in [0, 1] (any H×W ≥ 5), untiled; returns the same shape (unclamped)."""
        height, width = batch.shape[2:]
        if min(height, width) < 5:
            raise StylerError(f"image too small: {width}×{height}")
        padded = _pad4(np.ascontiguousarray(batch, dtype=np.float32))
        if self.backend == "onnx":
            out = self._runner.run(padded)
        else:
            import torch

            with torch.inference_mode():
                x = torch.from_numpy(padded).to(self.device)
                if self._fast_net is None:
                    out = self._loaded.net(x).float().cpu().numpy()
                else:
                    out = self._run_fast(x).float().cpu().numpy()
        return out[:, :, :height, :width]

    def _run_fast(self, x: Any) -> Any:
        import torch

        if self.precision == "bf16":
            x = x.to(torch.bfloat16)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        try:
            return self._fast_net(x)
        except Exception as exc:  # noqa: BLE001 - compilation failures come as many exception types
            out_of_memory = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
            if self._fast_fallback is None or isinstance(exc, out_of_memory):
                raise
            # Blame the compiler only if the eager network runs where the compiled one failed; an error eager
            # raises too (a real runtime problem) propagates from here.
            out = self._fast_fallback(x)
            self.notes.append(f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                              f"running eager {self.precision} instead")
            self._fast_net, self._fast_fallback = self._fast_fallback, None
            return out

    def run_tiled(self, image: np.ndarray, tile: int, stats_max_pixels: int | None) -> np.ndarray:
        """Network on one ``H×W×3`` image, tile by tile with whole-image statistics (torch backend)."""
        import torch

        from styler.infer.tiling import tiled_forward

        loaded = self._load_torch()
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))[None]).to(self.device)
        out = tiled_forward(loaded.net, x, tile=tile, stats_max_pixels=stats_max_pixels)
        del x
        return out[0].float().cpu().numpy().transpose(1, 2, 0)

    def tile_plan(self, height: int, width: int, options: StylizeOptions) -> tuple[int, int | None] | None:
        """``(tile, stats_max_pixels)`` if this image should be tiled under ``options``, else None."""
        if options.tile_size == 0:
            return None
        per_px = 30 * self.width  # tiles always run on torch
        half_budget_px = max(64 * 64, int(options.memory_budget * GIB / 2 / per_px))
        stats = options.stats_max_pixels or half_budget_px
        if options.tile_size:
            return (options.tile_size, stats) if max(height, width) > options.tile_size else None
        if self.activation_bytes(height, width) <= options.memory_budget * GIB:
            return None
        from styler.infer.tiling import default_halo

        halo = default_halo(int(self.meta.get("arch", {}).get("residual_blocks", 5)))
        tile = int(math.sqrt(half_budget_px)) - 2 * halo
        return max(64, tile - tile % 4), stats

    def prepare(self, image: RGBImage, options: StylizeOptions) -> RGBImage:
        """Resize to the processing size (a no-op by default)."""
        size = processing_size(image.size, max_size=options.max_size, scale=options.scale)
        return resize_image(image, size)

    def finish(self, photo: RGBImage, styled: np.ndarray, options: StylizeOptions) -> RGBImage:
        """Colour preservation and strength on the network output; alpha carried over from the photo."""
        if options.preserve_color:
            styled = preserve_color(photo.rgb, styled, options.preserve_color)
        rgb = blend_strength(photo.rgb, styled, options.strength)
        return RGBImage(rgb=rgb, alpha=photo.alpha, source=photo.source, format=photo.format, mode=photo.mode,
                        frames=photo.frames, warnings=list(photo.warnings))

    def stylize(self, image: RGBImage, options: StylizeOptions | None = None) -> StylizeResult:
        """Stylize one decoded image."""
        return self.stylize_many([image], options)[0]

    def stylize_many(self, images: Sequence[RGBImage], options: StylizeOptions | None = None,
                     batch_size: int = 1) -> list[StylizeResult]:
        """Stylize several images; images of the same processing size share a batch of up to ``batch_size``."""
        options = options or StylizeOptions()
        prepared = [self.prepare(img, options) for img in images]
        results: list[StylizeResult | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for index, img in enumerate(prepared):
            height, width = img.rgb.shape[:2]
            plan = self.tile_plan(height, width, options) if options.strength > 0 else None
            if plan is not None:
                start = time.perf_counter()
                styled = self.run_tiled(img.rgb, *plan)
                results[index] = StylizeResult(self.finish(img, styled, options), time.perf_counter() - start,
                                               True, "torch")
            else:
                groups.setdefault((height, width), []).append(index)
        for indices in groups.values():
            for start_at in range(0, len(indices), max(1, batch_size)):
                chunk = indices[start_at:start_at + max(1, batch_size)]
                start = time.perf_counter()
                if options.strength > 0:
                    batch = np.stack([prepared[i].rgb.transpose(2, 0, 1) for i in chunk])
                    styled = self.run_batch(batch).transpose(0, 2, 3, 1)
                else:  # strength 0 is the photo itself; skip the network
                    styled = np.stack([prepared[i].rgb for i in chunk])
                per_image = (time.perf_counter() - start) / len(chunk)
                for k, i in enumerate(chunk):
                    results[i] = StylizeResult(self.finish(prepared[i], styled[k], options), per_image, False,
                                               self.backend)
        return [r for r in results if r is not None]


# --- functional API -------------------------------------------------------------------------------------------------

def stylize_tensor(model: Any, x: Any, *, tile_size: int | None = None, stats_max_pixels: int | None = None) -> Any:
    """Torch reference: ``N×3×H×W`` in [0, 1] → stylized tensor (clamped to [0, 1]); tiled when ``tile_size``."""
    import torch

    net = model.net if hasattr(model, "net") else model
    with torch.inference_mode():
        if tile_size:
            from styler.infer.tiling import tiled_forward

            out = torch.cat([tiled_forward(net, x[i:i + 1], tile=tile_size, stats_max_pixels=stats_max_pixels)
                             for i in range(x.shape[0])])
        else:
            out = net(x)
    return out.clamp(0, 1)


def stylize_image(model: Any, image: Any, *, max_size: int | None = None, scale: float | None = None,
                  preserve_color: str | None = None, strength: float = 1.0, tile_size: int | None = None,
                  memory_budget: float = 2.0, backend: str = "torch", device: str = "cpu") -> Any:
    """Stylize a PIL image, a path or an :class:`~styler.io.images.RGBImage`; returns a PIL image (RGBA if alpha).

    ``model`` is a :class:`Stylizer`, a loaded model, a path or a model name.
    """
    from PIL import Image

    from styler.io.images import read_image, to_uint8

    stylizer = model if isinstance(model, Stylizer) else Stylizer(model, device=device, backend=backend)
    if isinstance(image, Image.Image):
        import io

        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        image = read_image(buffer.getvalue(), name="<image>")
    elif not isinstance(image, RGBImage):
        image = read_image(image)
    options = StylizeOptions(max_size=max_size, scale=scale, preserve_color=preserve_color, strength=strength,
                             tile_size=tile_size, memory_budget=memory_budget)
    out = stylizer.stylize(image, options).image
    pil = Image.fromarray(to_uint8(out.rgb), "RGB")
    if out.alpha is not None:
        pil.putalpha(Image.fromarray(to_uint8(out.alpha), "L"))
    return pil


ProgressFn = Callable[[int, int], None]

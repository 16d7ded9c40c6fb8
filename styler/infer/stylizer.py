"""Stylizing decoded images with a trained model: sizing, colour preservation, strength, batching and tiling.

:class:`Stylizer` owns everything around the network and delegates the network itself to a backend
(:mod:`styler.infer.backends`: eager torch, compiled, ONNX Runtime), opened once and reused for every image. The
backend sees only batches padded to multiples of 4; images whose estimated activation memory exceeds the budget are
tiled with whole-image statistics (:mod:`styler.infer.tiling`) on eager fp32 torch, whatever the backend.
Everything outside the network is numpy, so the ONNX Runtime path needs no torch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from styler.errors import StylerError
from styler.infer.backends import Backend, ModelHandle, ModelLike, TilingBackend, open_backend
from styler.infer.color import blend_strength, preserve_color
from styler.infer.options import StylizeOptions
from styler.infer.sizing import TilePlan, activation_bytes, processing_size, tile_plan
from styler.io.images import RGBImage, resize_image

__all__ = ["StylizeOptions", "StylizeResult", "Stylizer", "stylize_image", "stylize_tensor"]

#: What results stylized in tiles report as their backend: tiles always run on eager torch.
TILED_BACKEND = "torch"


@dataclass
class StylizeResult:
    """One stylized image, with what ``styler apply --json`` reports about it (time, tiling, backend)."""

    image: RGBImage
    seconds: float
    tiled: bool
    backend: str
    warnings: list[str] = field(default_factory=list)


def _pad4(batch: np.ndarray) -> np.ndarray:
    """Reflection-pad H and W up to multiples of 4, the backends' input contract (two stride-2 convolutions)."""
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
        backend: ``auto``, ``torch``, ``onnx`` or ``compiled`` (:mod:`styler.infer.backends`).
        threads: intra-op threads (None: the runtime's default).
        precision: ``auto``, ``fp32`` or ``bf16`` for the torch and compiled backends.
        style: for a multi-style model, the style or blend to apply (``"great_wave"``,
            ``"great_wave:0.6,starry_night:0.4"``; :mod:`styler.infer.styles`); None: its first style.
    """

    def __init__(self, model: ModelLike = None, *, device: str = "auto", backend: str = "auto",
                 threads: int | None = None, precision: str = "auto", style: str | None = None) -> None:
        self.engine: Backend = open_backend(backend, model, device=device, threads=threads, precision=precision)
        self.model: ModelHandle = self.engine.model
        self.threads = threads
        self._tiler: TilingBackend | None = cast(TilingBackend, self.engine) if self.engine.tiles else None
        self.set_style(style)

    @property
    def style_names(self) -> list[str]:
        """The model's styles in (γ, β)-row order (one name for a single-style model)."""
        from styler.infer.styles import model_style_names

        return model_style_names(self.meta.get("metadata") or {})

    def set_style(self, style: str | None) -> None:
        """Choose the style or blend of a multi-style model for every following image (None: its first style).

        A single-style model accepts only its own style's name (or None): there is nothing to choose.
        """
        from styler.infer.styles import parse_style_mix

        names = self.style_names
        mix = parse_style_mix(style, names)
        if mix is not None and len(names) == 1 and self.meta.get("arch", {}).get("norm", {}).get("kind") != \
                "conditional":
            mix = None  # its own style: nothing to feed
        self.model.style_mix = mix

    @property
    def backend(self) -> str:
        return self.engine.name

    @property
    def device(self) -> str:
        return self.engine.device

    @property
    def precision(self) -> str:
        return self.engine.precision

    @property
    def notes(self) -> list[str]:
        """Fallbacks taken so far (the backend's; it may add one while running, e.g. a failed compile)."""
        return self.engine.notes

    @property
    def model_path(self) -> Path | None:
        return self.model.path

    @property
    def meta(self) -> dict[str, Any]:
        return self.model.meta

    @property
    def name(self) -> str:
        """The model's name as a file-name-safe token: it comes from the model file and ends up in output names."""
        from styler.io.names import safe_name

        return safe_name(self.meta.get("name") or (self.model_path.stem if self.model_path else "model"))

    @property
    def width(self) -> int:
        return int(self.meta.get("arch", {}).get("width", 32))

    # -- sizing --------------------------------------------------------------------------------------------------
    def activation_bytes(self, height: int, width: int) -> int:
        """Estimated peak activation memory of one untiled pass on this stylizer's backend."""
        return activation_bytes(height, width, net_width=self.width, cost=self.engine.activation_cost)

    def tile_plan(self, height: int, width: int, options: StylizeOptions) -> TilePlan | None:
        """``(tile, stats_max_pixels)`` if this image should be tiled under ``options``, else None."""
        return tile_plan(height, width, options, untiled_bytes=self.activation_bytes(height, width),
                         net_width=self.width,
                         residual_blocks=int(self.meta.get("arch", {}).get("residual_blocks", 5)))

    # -- running the network --------------------------------------------------------------------------------------
    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        """Network on ``N×3×H×W`` float32 in [0, 1] (any H×W ≥ 5), untiled; returns the same shape (unclamped)."""
        height, width = batch.shape[2:]
        if min(height, width) < 5:
            raise StylerError(f"image too small: {width}×{height}")
        out = self.engine.run(_pad4(np.ascontiguousarray(batch, dtype=np.float32)))
        return out[:, :, :height, :width]

    def run_tiled(self, image: np.ndarray, tile: int, stats_max_pixels: int | None) -> np.ndarray:
        """Network on one ``H×W×3`` image, tile by tile with whole-image statistics (eager fp32 torch)."""
        if self._tiler is None:  # e.g. ONNX Runtime: open eager torch on the same model, once
            self._tiler = cast(TilingBackend, open_backend("torch", self.model, device=self.device,
                                                           threads=self.threads, precision="fp32"))
        return self._tiler.run_tiled(image, tile, stats_max_pixels)

    # -- one image around the network -----------------------------------------------------------------------------
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
        """Stylize several images; images of the same processing size share a batch of up to ``batch_size``.

        Results come back in the order of ``images``. Strength 0 skips the network (the result is the photo).
        """
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
                                               True, TILED_BACKEND)
            else:
                groups.setdefault((height, width), []).append(index)
        step = max(1, batch_size)
        for indices in groups.values():
            for start_at in range(0, len(indices), step):
                chunk = indices[start_at:start_at + step]
                for i, result in zip(chunk, self._stylize_chunk([prepared[i] for i in chunk], options)):
                    results[i] = result
        return [r for r in results if r is not None]

    def _stylize_chunk(self, images: list[RGBImage], options: StylizeOptions) -> list[StylizeResult]:
        """One untiled batch of same-size images; the batch's time is shared equally between them."""
        start = time.perf_counter()
        if options.strength > 0:
            styled = self.run_batch(np.stack([img.rgb.transpose(2, 0, 1) for img in images])).transpose(0, 2, 3, 1)
        else:
            styled = np.stack([img.rgb for img in images])
        per_image = (time.perf_counter() - start) / len(images)
        return [StylizeResult(self.finish(img, styled[k], options), per_image, False, self.backend)
                for k, img in enumerate(images)]


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
    import io

    from PIL import Image

    from styler.io.images import read_image, to_uint8

    stylizer = model if isinstance(model, Stylizer) else Stylizer(model, device=device, backend=backend)
    if isinstance(image, Image.Image):
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

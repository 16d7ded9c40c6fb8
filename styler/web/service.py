"""What the server does, without HTTP: the jobs that run on the worker pool, and the state they share.

Why apart from the routes: every function here is plain synchronous Python that a worker thread runs (decode,
stylize, encode), so it can be tested and timed without a server, and :mod:`styler.web.app` stays a thin layer of
parsing and answering. :class:`Service` owns the long-lived state: the model registry, the stylizer cache, the
thumbnails (made once per model file and style from a common picture, kept in memory), the samples and the pool.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from styler.errors import StylerError
from styler.infer.options import StylizeOptions
from styler.io.images import RGBImage, to_uint8
from styler.web.config import ServeConfig
from styler.web.errors import ClientError
from styler.web.jobs import JobPool
from styler.web.registry import ModelRegistry, Selection, StylizerCache, ablation_selections
from styler.web.samples import SampleSet
from styler.web.uploads import decode_image

__all__ = ["Service", "StylizeRequest", "StylizeOutput"]


@dataclass(frozen=True)
class StylizeRequest:
    """One ``POST /api/stylize`` after its fields were checked (the model is resolved on the worker: reading a
    model's header for the first time may take a moment)."""

    model: str | None = None
    style: str | None = None
    strength: float = 1.0
    preserve_color: bool = False
    max_size: int | None = None


@dataclass
class StylizeOutput:
    """The encoded result and what the response headers report about it."""

    png: bytes
    seconds: float  # the stylizer's time (network, colour, strength)
    total_seconds: float  # decode + stylize + encode
    backend: str
    width: int
    height: int
    model: str
    style: str
    warnings: list[str] = field(default_factory=list)


def encode_png(image: RGBImage) -> bytes:
    """RGB (and alpha, if the photo had one) as a PNG; a fast compression level, since the network dominates."""
    pil = Image.fromarray(to_uint8(image.rgb), "RGB")
    if image.alpha is not None:
        pil.putalpha(Image.fromarray(to_uint8(image.alpha), "L"))
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class Service:
    """The server's state and jobs (one per app)."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.registry = ModelRegistry()
        self.cache = StylizerCache(config)
        self.samples = SampleSet()
        self.pool = JobPool(config.workers, config.queue)
        self.started = time.time()
        self._thumbnails: dict[tuple[str, tuple[float, ...] | None, int], bytes] = {}
        self._thumb_lock = threading.Lock()

    # -- jobs (run on the pool) ----------------------------------------------------------------------------------
    def decode(self, data: bytes, label: str = "upload") -> RGBImage:
        """An uploaded photo, decoded under the server's pixel cap (413/415/400 for the client's mistakes)."""
        return decode_image(data, self.config.max_pixels, label)

    def stylize(self, data: bytes, request: StylizeRequest) -> StylizeOutput:
        """Decode, stylize and encode one photo."""
        start = time.perf_counter()
        selection = self.registry.resolve(request.model, request.style)
        photo = self.decode(data)
        stylizer = self.cache.get(selection)
        options = StylizeOptions(max_size=request.max_size, strength=request.strength,
                                 preserve_color="ycbcr" if request.preserve_color else None)
        try:
            result = stylizer.stylize(photo, options)
        except StylerError as exc:  # e.g. a photo smaller than the network's 5 px minimum
            raise ClientError(422, str(exc)) from exc
        png = encode_png(result.image)
        width, height = result.image.size
        return StylizeOutput(png=png, seconds=result.seconds, total_seconds=time.perf_counter() - start,
                             backend=result.backend, width=width, height=height, model=selection.info.name,
                             style=selection.style, warnings=list(photo.warnings) + list(result.warnings))

    def thumbnail(self, selection: Selection) -> bytes:
        """The gallery thumbnail of a model (and style): the common picture stylized, made once and kept."""
        side = self.config.thumbnail_size
        key = (str(selection.info.path), selection.mix, side)
        with self._thumb_lock:
            cached = self._thumbnails.get(key)
        if cached is not None:
            return cached
        picture = self.samples.thumbnail_source(side)
        photo = RGBImage(rgb=np.asarray(picture, dtype=np.float32) / 255.0, source="thumbnail")
        result = self.cache.get(selection).stylize(photo, StylizeOptions())
        png = encode_png(result.image)
        with self._thumb_lock:
            self._thumbnails[key] = png
        return png

    def cached_thumbnail(self, selection: Selection) -> bytes | None:
        """A thumbnail already made (served without a place in the pool)."""
        with self._thumb_lock:
            return self._thumbnails.get((str(selection.info.path), selection.mix, self.config.thumbnail_size))

    def norms_side_by_side(self, data: bytes, size: int) -> dict[str, Any]:
        from styler.web import norms

        selections = self._ablation()
        return norms.side_by_side(self.cache, selections, self.decode(data), size)

    def norms_independence(self, data: bytes, other: bytes | None, size: int) -> dict[str, Any]:
        from styler.web import norms

        selections = self._ablation()
        photo = self.decode(data)
        mate = self.decode(other, "other photo") if other is not None else None
        return norms.batch_independence(self.cache, selections, photo, mate, size)

    def _ablation(self) -> list[Selection]:
        from styler.web.norms import require_models

        selections = ablation_selections(self.registry, self.config.ablation_models)
        require_models(selections, self.config.ablation_models)
        return selections

    # -- state ---------------------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        import styler

        return {"status": "ok", "version": styler.__version__, "uptime_s": round(time.time() - self.started, 1),
                "pool": self.pool.stats(), "loaded_models": self.cache.names(),
                "limits": {"max_upload_bytes": self.config.max_upload_bytes, "max_pixels": self.config.max_pixels,
                           "max_side": self.config.max_side}}

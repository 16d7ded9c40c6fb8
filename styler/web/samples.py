"""The sample photos the page offers, and the picture the style gallery's thumbnails are made from.

Why found at run time rather than shipped: styler ships no photos of its own (its training photos carry licenses
that forbid redistribution), so, like ``make demo``, the server offers photos that packages already installed
bring: matplotlib's ``grace_hopper.jpg`` and, where scikit-image is installed, its ``astronaut``, ``chelsea`` and
``coffee``. A small synthetic picture (a sky, hills and a sun) is always added last, so the page always has
something to try, the gallery always has thumbnails, and the batch-independence demo always has a second photo
that differs from the first (two copies of one photo in a batch would hide batch norm's shift).
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Callable

import numpy as np
from PIL import Image

__all__ = ["SampleSet", "synthetic_sample"]

#: Long side of a served sample (big enough to show a style, small enough to stylize in about a second).
SAMPLE_SIDE = 768


def synthetic_sample(size: int = 512) -> Image.Image:
    """A deterministic landscape: a sky gradient, two hill lines and a sun, with mild texture for the network."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    sky = np.stack([0.35 + 0.4 * y, 0.55 + 0.3 * y, 0.95 - 0.2 * y], axis=-1)
    sun = ((x - 0.72) ** 2 + (y - 0.28) ** 2) < 0.012
    sky[sun] = (1.0, 0.85, 0.35)
    far = y > 0.58 + 0.06 * np.sin(7 * x)
    near = y > 0.72 + 0.05 * np.sin(11 * x + 1.3)
    sky[far] = (0.25, 0.45, 0.3)
    sky[near] = (0.35, 0.3, 0.18)
    texture = np.random.default_rng(7).normal(0.0, 0.03, sky.shape).astype(np.float32)
    rgb = np.clip(sky + texture, 0, 1)
    return Image.fromarray((rgb * 255 + 0.5).astype(np.uint8), "RGB")


def _matplotlib_hopper() -> Image.Image | None:
    try:
        import matplotlib
    except ImportError:
        return None
    from pathlib import Path

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return Image.open(path).convert("RGB") if path.is_file() else None


def _skimage(name: str) -> Callable[[], Image.Image | None]:
    def load() -> Image.Image | None:
        try:
            from skimage import data
        except ImportError:
            return None
        return Image.fromarray(getattr(data, name)()).convert("RGB")
    return load


#: Sample name → loader (None when the package is missing), in the order the page shows them.
_SOURCES: dict[str, Callable[[], Image.Image | None]] = {
    "grace_hopper": _matplotlib_hopper,
    "astronaut": _skimage("astronaut"),
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
}


class SampleSet:
    """The available samples, each decoded, downscaled and JPEG-encoded once (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jpegs: dict[str, bytes] | None = None

    def _load(self) -> dict[str, bytes]:
        with self._lock:
            if self._jpegs is None:
                found: dict[str, bytes] = {}
                for name, loader in _SOURCES.items():
                    try:
                        image = loader()
                    except Exception:  # a broken optional package must not take the page down
                        image = None
                    if image is not None:
                        found[name] = _jpeg(image)
                found["landscape"] = _jpeg(synthetic_sample())  # always: a second photo for the batch demo
                self._jpegs = found
            return self._jpegs

    def names(self) -> list[str]:
        return list(self._load())

    def get(self, name: str) -> bytes | None:
        """The sample's JPEG bytes, or None for a name that is not a sample."""
        return self._load().get(name)

    def thumbnail_source(self, side: int) -> Image.Image:
        """The gallery's common picture: the first sample, centre-cropped square at ``side`` pixels."""
        return _square(self.get(self.names()[0]) or b"", side)


@functools.lru_cache(maxsize=4)
def _square(jpeg: bytes, side: int) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg)).convert("RGB") if jpeg else synthetic_sample(side)
    short = min(image.size)
    left, top = (image.width - short) // 2, (image.height - short) // 2
    return image.crop((left, top, left + short, top + short)).resize((side, side), Image.Resampling.LANCZOS)


def _jpeg(image: Image.Image) -> bytes:
    image = image.copy()
    image.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()

"""The photos being stylized: loading them as network inputs, and the synthetic batch-mates.

Batch statistics need every image of a batch at one size, so the measurements load square centre crops; the
comparison grid keeps each photo's aspect ratio unless it, too, uses batch statistics.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image

from styler.errors import StylerError
from styler.io.images import RGBImage, read_image, resize_image, tensor_to_pil

__all__ = ["Photo", "PhotoSource", "load_photo", "load_photos", "synthetic_companions"]

#: What :func:`load_photo` reads: an image file, a decoded image, or a PIL image.
PhotoSource = Union[str, "os.PathLike[str]", RGBImage, Image.Image]


@dataclass
class Photo:
    """A photo prepared for the network: name, 1×3×H×W float32 tensor in [0, 1]."""

    name: str
    tensor: torch.Tensor

    @property
    def pil(self) -> Image.Image:
        return tensor_to_pil(self.tensor[0])


def _center_square(image: RGBImage) -> RGBImage:
    h, w = image.rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return RGBImage(rgb=np.ascontiguousarray(image.rgb[top:top + side, left:left + side]), source=image.source)


def load_photo(source: PhotoSource, size: int | None = 256, *, square: bool = False,
               name: str | None = None) -> Photo:
    """Read a photo (via :mod:`styler.io.images`), optionally centre-crop it to a square, and scale its long side to
    ``size`` (None: keep the size). Alpha is dropped."""
    if isinstance(source, Image.Image):
        arr = np.asarray(source.convert("RGB"), dtype=np.float32) / 255.0
        image = RGBImage(rgb=arr, source=name or "<image>")
    elif isinstance(source, RGBImage):
        image = source
    else:
        image = read_image(source)
        name = name or Path(source).stem
    if square:
        image = _center_square(image)
    if size:
        w, h = image.size
        scale = size / max(w, h)
        image = resize_image(image, (max(5, round(w * scale)), max(5, round(h * scale))))
    tensor = torch.from_numpy(np.ascontiguousarray(image.rgb.transpose(2, 0, 1)))[None].float()
    return Photo(name=name or Path(image.source or "photo").stem, tensor=tensor)


def load_photos(sources: Iterable[PhotoSource], size: int | None = 256, *, square: bool = False) -> list[Photo]:
    """Several photos; folders are expanded to the images they contain (sorted)."""
    from styler.io.images import find_images

    photos: list[Photo] = []
    for source in sources:
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            photos.extend(load_photo(p, size, square=square) for p in find_images(source))
        else:
            photos.append(load_photo(source, size, square=square))
    if not photos:
        raise StylerError("no photos given (or the folders hold no images)")
    return photos


def synthetic_companions(target: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Batch-mates that differ strongly from any photo: a darkened copy of the target, flat grey, uniform noise.

    A batch-dependent norm shifts the target's output most when its mates' statistics are far from its own; these
    three make the effect large and reproducible (the noise has its own seeded generator)."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "dark": target * 0.1,
        "flat": torch.full_like(target, 0.5),
        "noise": torch.rand(target.shape, generator=gen, dtype=target.dtype),
    }

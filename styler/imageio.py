"""Reading and writing images: one place that turns any photo file into a clean RGB tensor and back.

Photos arrive in every mode Pillow knows (grayscale, palette, CMYK, 16-bit, with alpha) and with EXIF rotation
flags; everything else in styler sees only RGB float tensors in [0, 1] of shape 1×3×H×W.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .errors import ImageError

__all__ = ["IMAGE_EXTENSIONS", "open_rgb", "pil_to_tensor", "tensor_to_pil", "save_image", "find_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image file as an 8-bit RGB PIL image with EXIF orientation applied."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                scale = 255.0 / 65535.0 if arr.max() > 255 else 1.0
                img = Image.fromarray(np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8), "L")
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot read image {path}: {exc}") from exc


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image → 1×3×H×W float tensor in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """1×3×H×W or 3×H×W float tensor in [0, 1] (clamped) → RGB PIL image."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected a single image, got a batch of {x.shape[0]}")
        x = x[0]
    arr = (x.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def save_image(img: Image.Image | torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write an image, creating parent folders; the format follows the suffix."""
    if isinstance(img, torch.Tensor):
        img = tensor_to_pil(img)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.suffix.lower() in (".jpg", ".jpeg"):
            img.convert("RGB").save(path, quality=quality)
        else:
            img.save(path)
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot write image {path}: {exc}") from exc
    return path


def find_images(folder: str | os.PathLike) -> list[Path]:
    """All image files below ``folder`` (recursive), sorted for a deterministic order."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not p.name.startswith("."))

"""Colour handling after the network: colour preservation and the strength blend, all numpy.

Why numpy and not torch: these run on every image whatever the backend, and the ONNX Runtime path must not import
torch. Images are ``H×W×3`` float arrays in [0, 1].

Colour preservation keeps the photo's chroma and takes only the luminance from the stylized image. YCbCr (BT.601,
as JPEG) is the cheap default; CIE Lab separates lightness from colour more faithfully for saturated photos.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COLOR_SPACES", "rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_lab", "lab_to_rgb", "preserve_color",
           "blend_strength"]

COLOR_SPACES = ("ycbcr", "lab")

_YCBCR = np.array([[0.299, 0.587, 0.114],
                   [-0.168735892, -0.331264108, 0.5],
                   [0.5, -0.418687589, -0.081312411]], dtype=np.float64)  # BT.601 full range (JPEG)
_YCBCR_INV = np.linalg.inv(_YCBCR)

_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])  # sRGB primaries, D65
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE = _RGB_TO_XYZ.sum(axis=1)
_DELTA = 6 / 29  # CIE Lab: where the cube root gives way to the linear segment near black


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB [0, 1] → Y in [0, 1], Cb/Cr in [−0.5, 0.5] (BT.601 full range)."""
    return (rgb @ _YCBCR.T.astype(np.float32)).astype(np.float32)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr` (not clipped: out-of-gamut values are the caller's to clip)."""
    return (ycc @ _YCBCR_INV.T.astype(np.float32)).astype(np.float32)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((np.maximum(c, 0) + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.maximum(c, 0) ** (1 / 2.4) - 0.055)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB [0, 1] → CIE L*a*b* (D65)."""
    xyz = (_srgb_to_linear(np.clip(rgb, 0, 1).astype(np.float64)) @ _RGB_TO_XYZ.T) / _WHITE
    f = np.where(xyz > _DELTA ** 3, np.cbrt(xyz), xyz / (3 * _DELTA ** 2) + 4 / 29)
    lab = np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)
    return lab.astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) → sRGB, not clipped (see :func:`ycbcr_to_rgb`)."""
    lab = lab.astype(np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4 / 29)) * _WHITE
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
    """``photo + strength·(stylized − photo)``: 0 returns the photo, 1 the stylized image.

    The two ends return early so that strength 0 is bit-exact the photo (tests and users compare against it).
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if strength == 1.0:
        return np.clip(stylized, 0, 1)
    if strength == 0.0:
        return photo.copy()
    return np.clip(photo + np.float32(strength) * (np.clip(stylized, 0, 1) - photo), 0, 1)

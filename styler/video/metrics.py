"""How much a stylized video flickers, and how much detail it keeps: the numbers the temporal routes are judged by.

Why "aligned" differences: a handheld or panning camera moves the picture, so the plain difference of consecutive
frames measures the motion, not the flicker. The synthetic clips (:mod:`styler.video.synthetic`) are windows cut
from a still photo at known offsets, so two consecutive frames can be compared on the scene pixels both of them
show, shifted into register exactly (integer offsets, no resampling). What is left is what changed on the same
scene point: sensor noise and codec noise in the input, flicker in a stylized output.

Every number is in 8-bit units (0..255) so it reads like the issue's figures; ``margin`` pixels along every frame
edge are left out because reflection padding makes a network's output near the border depend on where the border
is, which is not flicker.

* :func:`flicker`: mean over consecutive pairs of the aligned mean absolute difference (all channels).
* :func:`global_flicker`: mean over consecutive pairs of the change of each channel's mean on the shared region,
  i.e. the part of the flicker that is a global colour/brightness pumping (what normalization statistics cause).
* :func:`detail`: mean Laplacian energy of the luma (mean squared 4-neighbour Laplacian): blur lowers it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Offset", "DEFAULT_MARGIN", "as_8bit", "aligned_pair", "pair_flicker", "flicker", "global_flicker",
           "laplacian_energy", "detail", "difference_map"]

#: Where a frame's window sits in the scene: (rows, columns) of its top-left corner.
Offset = tuple[int, int]
#: Border pixels left out of every comparison (the network's reflection-padding zone is a few pixels wide).
DEFAULT_MARGIN = 8

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def as_8bit(frame: np.ndarray) -> np.ndarray:
    """A frame as float32 in 8-bit units: uint8 as is, float images in [0, 1] scaled by 255."""
    if frame.dtype == np.uint8:
        return frame.astype(np.float32)
    return np.asarray(frame, dtype=np.float32) * 255.0


def aligned_pair(prev: np.ndarray, cur: np.ndarray, prev_offset: Offset = (0, 0), cur_offset: Offset = (0, 0),
                 margin: int = DEFAULT_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """The scene region both frames show, cut from each (same shape, in register), ``margin`` px off every edge.

    Scene pixel (Y, X) is at (Y − oy, X − ox) in a frame whose window starts at (oy, ox).
    """
    if prev.shape != cur.shape:
        raise ValueError(f"frames differ in shape: {prev.shape} and {cur.shape}")
    height, width = cur.shape[:2]
    top = max(prev_offset[0], cur_offset[0]) + margin
    bottom = min(prev_offset[0], cur_offset[0]) + height - margin
    left = max(prev_offset[1], cur_offset[1]) + margin
    right = min(prev_offset[1], cur_offset[1]) + width - margin
    if bottom <= top or right <= left:
        raise ValueError("the two frames share no scene region (offsets too far apart for the margin)")

    def cut(frame: np.ndarray, offset: Offset) -> np.ndarray:
        return frame[top - offset[0]:bottom - offset[0], left - offset[1]:right - offset[1]]

    return cut(prev, prev_offset), cut(cur, cur_offset)


def _offsets(count: int, offsets: Sequence[Offset] | None) -> Sequence[Offset]:
    if offsets is None:
        return [(0, 0)] * count
    if len(offsets) != count:
        raise ValueError(f"{count} frames but {len(offsets)} offsets")
    return offsets


def pair_flicker(frames: Sequence[np.ndarray], offsets: Sequence[Offset] | None = None,
                 margin: int = DEFAULT_MARGIN) -> list[float]:
    """Aligned mean |Δ| (8-bit units) of every consecutive pair: ``len(frames) − 1`` values."""
    offsets = _offsets(len(frames), offsets)
    values = []
    for t in range(1, len(frames)):
        a, b = aligned_pair(frames[t - 1], frames[t], offsets[t - 1], offsets[t], margin)
        values.append(float(np.abs(as_8bit(b) - as_8bit(a)).mean()))
    return values


def flicker(frames: Sequence[np.ndarray], offsets: Sequence[Offset] | None = None,
            margin: int = DEFAULT_MARGIN) -> float:
    """Mean aligned |Δ| of consecutive frames in 8-bit units (static camera when ``offsets`` is None)."""
    if len(frames) < 2:
        raise ValueError("flicker needs at least two frames")
    return float(np.mean(pair_flicker(frames, offsets, margin)))


def global_flicker(frames: Sequence[np.ndarray], offsets: Sequence[Offset] | None = None,
                   margin: int = DEFAULT_MARGIN) -> float:
    """Mean over consecutive pairs and channels of |Δ mean| on the shared region: global colour pumping only."""
    offsets = _offsets(len(frames), offsets)
    values = []
    for t in range(1, len(frames)):
        a, b = aligned_pair(frames[t - 1], frames[t], offsets[t - 1], offsets[t], margin)
        values.append(float(np.abs(as_8bit(b).mean(axis=(0, 1)) - as_8bit(a).mean(axis=(0, 1))).mean()))
    return float(np.mean(values))


def laplacian_energy(frame: np.ndarray, margin: int = DEFAULT_MARGIN) -> float:
    """Mean squared 4-neighbour Laplacian of the luma (8-bit units), ``margin`` px off every edge."""
    luma = as_8bit(frame) @ _LUMA
    lap = (luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4.0 * luma[1:-1, 1:-1])
    inner = max(0, margin - 1)
    if inner:
        lap = lap[inner:-inner, inner:-inner]
    return float(np.mean(np.square(lap)))


def detail(frames: Sequence[np.ndarray], margin: int = DEFAULT_MARGIN) -> float:
    """Mean :func:`laplacian_energy` over the frames."""
    return float(np.mean([laplacian_energy(f, margin) for f in frames]))


def difference_map(prev: np.ndarray, cur: np.ndarray, prev_offset: Offset = (0, 0), cur_offset: Offset = (0, 0),
                   margin: int = DEFAULT_MARGIN) -> np.ndarray:
    """Per-pixel aligned |Δ| averaged over channels (8-bit units, float32) on the shared region, for figures."""
    a, b = aligned_pair(prev, cur, prev_offset, cur_offset, margin)
    return np.abs(as_8bit(b) - as_8bit(a)).mean(axis=2)

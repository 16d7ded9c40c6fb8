"""Flow-based temporal blending: the previous stylized frame, warped onto the current one, mixed in where it is valid.

Why it needs a validity mask: the previous output can only stand in for the current one where the flow is right.
Where something was occluded, entered the frame, or the flow is simply wrong, the warped frame shows the wrong
content and blending it in drags ghosts along. The test here is the standard forward–backward consistency check
(Sundaram et al. 2010; used by Ruder et al. 2016 for video style transfer): following the backward flow and then the
forward flow must come back to the start, ``|b(p) + f(p + b(p))|² ≤ 0.01·(|b|² + |f|²) + 0.5``; pixels whose warp
falls outside the previous frame fail too, and so do pixels whose *input* luma differs from the warped previous
input by more than :data:`LUMA_TOLERANCE` (a light switched on, a reflection, an occlusion the flow missed: the
content changed, so the new stylization must show it). Where the tests pass the output is
``(1 − w)·stylized + w·warped_previous_output``; elsewhere it is the new stylized frame untouched.

Blending the previous *output* (not the previous raw stylization) makes it recursive, an exponential average along
motion paths. Blending always costs detail, because the part of the texture that changes between frames is
averaged away (``scripts/bench_video.py`` measures both): it is the second route after the grid alignment of
:mod:`styler.video.motion`, which removes most flicker at no cost in detail.

A frame where fewer than :data:`CUT_FRACTION` of the pixels pass the test is treated as a scene cut: nothing is
blended and the next frame starts from it.
"""

from __future__ import annotations

import numpy as np

from styler.video.motion import Motion

__all__ = ["CUT_FRACTION", "LUMA_TOLERANCE", "consistent", "warp", "FlowBlender"]

#: Below this fraction of flow-consistent pixels a frame counts as a cut (no blending).
CUT_FRACTION = 0.3
#: Largest change of input luma (8-bit) along the flow that still counts as the same content.
LUMA_TOLERANCE = 20


def _sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs + flow[..., 0], ys + flow[..., 1]


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``p + flow(p)`` (bilinear; edges replicated): the previous frame moved onto this one."""
    import cv2

    map_x, map_y = _sample_grid(flow)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistent(backward: np.ndarray, forward: np.ndarray | None, luma: np.ndarray | None = None,
               previous_luma: np.ndarray | None = None) -> np.ndarray:
    """Boolean H×W mask of pixels whose backward flow lands inside the previous frame and, given the forward flow,
    passes the forward–backward check, and, given both frames' luma, keeps the input's brightness."""
    height, width = backward.shape[:2]
    map_x, map_y = _sample_grid(backward)
    mask = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    if luma is not None and previous_luma is not None:
        moved = warp(previous_luma, backward).astype(np.int16)
        mask &= np.abs(luma.astype(np.int16) - moved) <= LUMA_TOLERANCE
    if forward is not None:
        there = warp(forward, backward)
        error = np.square(backward + there).sum(axis=2)
        scale = np.square(backward).sum(axis=2) + np.square(there).sum(axis=2)
        mask &= error <= 0.01 * scale + 0.5
    return mask


class FlowBlender:
    """Blends each stylized frame with the previous output warped onto it (one instance per clip, frames in order).

    Args:
        weight: share of the warped previous output where the flow is consistent (0: no blending).
    """

    def __init__(self, weight: float = 0.3) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError("blend weight must be in [0, 1)")
        self.weight = weight
        self._previous: np.ndarray | None = None
        self._previous_luma: np.ndarray | None = None
        self.cuts = 0

    def reset(self) -> None:
        """Forget the previous output (the next frame is taken as it is)."""
        self._previous = self._previous_luma = None

    def __call__(self, styled: np.ndarray, motion: Motion) -> np.ndarray:
        """The output for one frame: ``styled`` (float32 H×W×3 in [0, 1]) blended with the warped previous output."""
        previous, self._previous = self._previous, styled
        previous_luma, self._previous_luma = self._previous_luma, motion.gray
        if previous is None or motion.backward is None or self.weight == 0.0 or previous.shape != styled.shape:
            return styled
        mask = consistent(motion.backward, motion.forward, motion.gray, previous_luma)
        if mask.mean() < CUT_FRACTION:
            self.cuts += 1
            return styled
        share = (self.weight * mask.astype(np.float32))[..., None]
        out = styled + share * (warp(previous, motion.backward) - styled)
        self._previous = out
        return out

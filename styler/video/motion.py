"""Motion between consecutive input frames (OpenCV's DIS optical flow) and the network's 4-pixel grid.

Why the grid matters more than anything else in a shaky video: the network downsamples by 4 (two stride-2
convolutions), so it is shift-equivariant only for shifts that are multiples of 4 px. A camera that shakes by 1–2 px
moves the picture *off* that grid, every frame to a different phase, and the network paints a differently phased
texture each time: on the issue's handheld clip, with neither noise nor compression, per-frame stylization differs
by 14.8 (8-bit aligned mean |Δ|) from frame to frame; the same frames re-padded so the scene stays on one grid phase
differ by 0.8 (``scripts/bench_video.py``). :class:`MotionTracker` follows the camera's global translation (median
of the backward flow, accumulated) and :func:`grid_pad` pads each frame on the top/left by the accumulated position
modulo 4, so every scene point meets the same phase of the grid in every frame. That costs ≤ 3 px of reflected
border and no resampling, so no detail is lost. It cannot undo rotation, zoom or parallax; the flow blend
(:mod:`styler.video.blend`) handles what is left.

Flow is computed on luma of the *input* frames (the photo's motion is what we want to follow; stylized frames
flicker by construction), with DIS on a copy downscaled to at most :data:`FLOW_MAX_SIDE` px on the long side, then
scaled back: the flow of a camera is smooth, and this keeps the two flows per frame cheap next to the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GRID", "FLOW_MAX_SIDE", "Motion", "MotionTracker", "luma", "flow_between", "grid_pad", "grid_crop"]

#: The network's sampling grid: two stride-2 convolutions.
GRID = 4
#: Optical flow runs at most at this long side (DIS's cost grows with pixels; camera motion is smooth).
FLOW_MAX_SIDE = 480


def luma(frame: np.ndarray) -> np.ndarray:
    """uint8 luma of a uint8 RGB frame (what DIS works on)."""
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def _dis(preset: str) -> Any:
    import cv2

    presets = {"ultrafast": cv2.DISOpticalFlow_PRESET_ULTRAFAST, "fast": cv2.DISOpticalFlow_PRESET_FAST,
               "medium": cv2.DISOpticalFlow_PRESET_MEDIUM}
    return cv2.DISOpticalFlow.create(presets[preset])


def flow_between(dis: Any, source: np.ndarray, target: np.ndarray, max_side: int = FLOW_MAX_SIDE) -> np.ndarray:
    """Dense flow ``f`` (H×W×2, x then y, in pixels) with ``source(p) ≈ target(p + f(p))``, full resolution.

    Both inputs are uint8 luma; the flow is computed on copies whose long side is at most ``max_side`` and
    scaled back (bilinear, values multiplied by the scale).
    """
    import cv2

    height, width = source.shape
    factor = min(1.0, max_side / max(height, width))
    if factor < 1.0:
        size = (max(8, round(width * factor)), max(8, round(height * factor)))
        small = dis.calc(cv2.resize(source, size, interpolation=cv2.INTER_AREA),
                         cv2.resize(target, size, interpolation=cv2.INTER_AREA), None)
        flow = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= width / size[0]
        flow[..., 1] *= height / size[1]
        return flow
    return dis.calc(source, target, None)


@dataclass
class Motion:
    """What the tracker knows about one frame.

    ``backward``: flow from this frame to the previous one (None for the first frame after a start or a cut);
    ``forward``: flow from the previous frame to this one (only computed when asked for, for the consistency
    check); ``position``: the camera's accumulated translation (x, y) in pixels since the clip started.
    """

    gray: np.ndarray
    backward: np.ndarray | None
    forward: np.ndarray | None
    position: tuple[float, float]

    @property
    def phase(self) -> tuple[int, int]:
        """(rows, columns) of top/left padding that put this frame's scene on the grid phase of the first frame."""
        return int(round(self.position[1])) % GRID, int(round(self.position[0])) % GRID


class MotionTracker:
    """Flows between consecutive input frames and the camera's accumulated global translation.

    Args:
        forward: also compute the forward flow (the flow blend's consistency check needs both directions).
        flows: compute flows at all (False: every frame is phase 0 and has no flow; for ``--temporal off``).
        preset: DIS preset, ``ultrafast``, ``fast`` or ``medium``.
    """

    def __init__(self, *, forward: bool = True, flows: bool = True, preset: str = "medium") -> None:
        self._dis = _dis(preset) if flows else None
        self._forward = forward
        self._previous: np.ndarray | None = None
        self._position = (0.0, 0.0)

    def update(self, frame: np.ndarray) -> Motion:
        """Track one uint8 RGB frame (frames must come in display order)."""
        gray = luma(frame)
        backward = forward = None
        if self._dis is not None and self._previous is not None and self._previous.shape == gray.shape:
            backward = flow_between(self._dis, gray, self._previous)
            if self._forward:
                forward = flow_between(self._dis, self._previous, gray)
            # cur(p) ≈ prev(p + d): the scene moved by −d in the frame, i.e. the camera by +d.
            shift = np.median(backward.reshape(-1, 2), axis=0)
            self._position = (self._position[0] + float(shift[0]), self._position[1] + float(shift[1]))
        self._previous = gray
        return Motion(gray, backward, forward, self._position)


def grid_pad(frame: np.ndarray, phase: tuple[int, int]) -> np.ndarray:
    """Reflection-pad an H×W×C frame by ``phase`` = (rows, columns) on top/left and ``GRID − 1 − phase`` on the
    bottom/right, so every frame of a clip pads to the same size (they can share a batch)."""
    top, left = phase
    return np.pad(frame, ((top, GRID - 1 - top), (left, GRID - 1 - left), (0, 0)), mode="reflect")


def grid_crop(padded: np.ndarray, phase: tuple[int, int]) -> np.ndarray:
    """Undo :func:`grid_pad`."""
    top, left = phase
    return padded[top:padded.shape[0] - (GRID - 1 - top), left:padded.shape[1] - (GRID - 1 - left)]

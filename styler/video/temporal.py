"""Stylizing a stream of frames: batching through the Stylizer, with the temporal routes around it.

The routes, each switchable (``styler video --temporal``), measured side by side by ``scripts/bench_video.py``:

* ``grid`` — keep the scene on one phase of the network's 4-px grid (:mod:`styler.video.motion`). Removes most of
  a shaky camera's flicker and costs no detail.
* ``flow`` — blend the previous output, warped by DIS optical flow, where the forward–backward check passes
  (:mod:`styler.video.blend`). Removes part of the rest (noise, non-translational motion), at some cost in detail.
* ``stats`` — exponential average of the normalization layers' per-frame affine maps (:mod:`styler.video.
  statsmooth`): against global colour pumping. The network then runs on eager torch
  (:func:`styler.video.pipeline.open_video_stylizer` builds that stylizer).

``on`` (the default) is :data:`DEFAULT_ROUTES`; ``off`` stylizes every frame on its own. :class:`FrameStylizer`
holds at most one batch of frames, so memory does not grow with the clip.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from styler.errors import StylerError
from styler.infer.options import StylizeOptions
from styler.io.images import RGBImage, to_uint8
from styler.video.blend import FlowBlender
from styler.video.motion import Motion, MotionTracker, grid_crop, grid_pad

__all__ = ["ROUTES", "DEFAULT_ROUTES", "TemporalSettings", "FrameStylizer"]

ROUTES = ("grid", "flow", "stats")
#: What ``--temporal on`` means.
DEFAULT_ROUTES = ("grid", "flow")


@dataclass(frozen=True)
class TemporalSettings:
    """Which routes run, and their two knobs.

    ``blend``: weight of the warped previous output in the flow route; ``decay``: weight of the past in the
    statistics average.
    """

    routes: tuple[str, ...] = DEFAULT_ROUTES
    blend: float = 0.3
    decay: float = 0.7

    @classmethod
    def parse(cls, text: str, *, blend: float | None = None, decay: float | None = None) -> TemporalSettings:
        """``on``, ``off`` or routes joined by ``+`` (``grid+flow``, ``flow+stats``, ...)."""
        text = text.strip().lower()
        if text in ("on", "default"):
            routes: tuple[str, ...] = DEFAULT_ROUTES
        elif text in ("off", "none"):
            routes = ()
        else:
            routes = tuple(part.strip() for part in text.split("+") if part.strip())
            unknown = [r for r in routes if r not in ROUTES]
            if unknown or not routes:
                raise StylerError(f"unknown --temporal {text!r}; use on, off or routes joined by '+' from "
                                  f"{', '.join(ROUTES)}")
        settings = cls(tuple(r for r in ROUTES if r in routes))  # one canonical order
        if blend is not None:
            settings = replace(settings, blend=blend)
        return settings if decay is None else replace(settings, decay=decay)

    @property
    def label(self) -> str:
        return "+".join(self.routes) or "off"


@dataclass
class _Pending:
    motion: Motion
    image: RGBImage
    phase: tuple[int, int]


@dataclass
class FrameStylizer:
    """Frames in (uint8 RGB, display order, one size), stylized frames out, in batches of ``batch_size``.

    Use :meth:`run` on an iterable of frames; it yields one output per input, in order.
    """

    stylizer: Any
    settings: TemporalSettings = field(default_factory=TemporalSettings)
    options: StylizeOptions = field(default_factory=StylizeOptions)
    batch_size: int = 4

    def __post_init__(self) -> None:
        routes = self.settings.routes
        self._tracker = MotionTracker(forward="flow" in routes, flows=bool({"grid", "flow"} & set(routes)))
        self._blender = FlowBlender(self.settings.blend if "flow" in routes else 0.0)
        if "stats" in routes:
            self.options = replace(self.options, tile_size=0)  # smoothed norms cannot be frozen per tile

    @property
    def cuts(self) -> int:
        """Frames the flow route treated as scene cuts."""
        return self._blender.cuts

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        pending: list[_Pending] = []
        for frame in frames:
            motion = self._tracker.update(frame)
            phase = motion.phase if "grid" in self.settings.routes else (0, 0)
            padded = grid_pad(frame, phase) if "grid" in self.settings.routes else frame
            pending.append(_Pending(motion, RGBImage(rgb=padded.astype(np.float32) / 255.0), phase))
            if len(pending) >= self.batch_size:
                yield from self._finish(pending)
                pending = []
        if pending:
            yield from self._finish(pending)

    def _finish(self, pending: list[_Pending]) -> Iterator[np.ndarray]:
        results = self.stylizer.stylize_many([p.image for p in pending], self.options, batch_size=self.batch_size)
        for item, result in zip(pending, results):
            styled = result.image.rgb
            if "grid" in self.settings.routes:
                styled = grid_crop(styled, item.phase)
            yield to_uint8(self._blender(np.clip(styled, 0.0, 1.0), item.motion))

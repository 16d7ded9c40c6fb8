"""Synthetic clips with known motion: what the temporal measurements and the video tests run on.

Why synthetic: flicker is only measurable when we know which pixel of one frame shows the same scene point as a
pixel of the next (:mod:`styler.video.metrics`). Cutting windows at known integer offsets out of a still photo gives
that for free, and lets each nuisance be dialled in alone:

* :func:`handheld_clip`: the camera shakes by 1–2 px per frame (a bounded random walk), with sensor noise and an
  x264 round trip, the issue's "handheld" clip;
* :func:`exposure_clip`: a still camera whose brightness and contrast oscillate (auto-exposure hunting, mains
  flicker under artificial light), plus the same noise;
* :func:`pan_clip`: a steady horizontal pan, so new content enters at one edge on every frame.

:func:`write_clip` writes frames (and optionally a tone as the audio track, or rotation metadata) with PyAV; the
tests build every input file they need with it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from PIL import Image

from styler.video.metrics import Offset

__all__ = ["Clip", "handheld_offsets", "pan_offsets", "render_windows", "sensor_noise", "exposure_flicker",
           "x264_roundtrip", "handheld_clip", "exposure_clip", "pan_clip", "write_clip", "tone"]


@dataclass
class Clip:
    """Frames (uint8 H×W×3) and where each frame's window sits in the scene (for aligned measurements)."""

    name: str
    frames: list[np.ndarray]
    offsets: list[Offset]
    fps: int = 24


def handheld_offsets(count: int, rng: np.random.Generator, reach: int = 4) -> list[Offset]:
    """A shaky camera: every frame moves 1 or 2 px along each axis in a random direction, kept within ±``reach``."""
    position = np.array([reach, reach])
    offsets = [(int(position[0]), int(position[1]))]
    for _ in range(count - 1):
        step = rng.integers(1, 3, size=2) * rng.choice([-1, 1], size=2)
        position = np.clip(position + step, 0, 2 * reach)
        offsets.append((int(position[0]), int(position[1])))
    return offsets


def pan_offsets(count: int, speed: int, row: int = 0) -> list[Offset]:
    """A steady pan to the right, ``speed`` px per frame."""
    return [(row, t * speed) for t in range(count)]


def _scene(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """The photo scaled (aspect kept, Lanczos) so that it covers ``width``×``height``, as uint8."""
    image = Image.fromarray(photo)
    factor = max(width / image.width, height / image.height)
    size = (max(width, round(image.width * factor)), max(height, round(image.height * factor)))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)


def render_windows(photo: np.ndarray, offsets: Sequence[Offset], size: tuple[int, int]) -> list[np.ndarray]:
    """Cut ``size`` = (width, height) windows at ``offsets`` out of ``photo`` scaled to cover every window."""
    width, height = size
    span_y, span_x = height + max(o[0] for o in offsets), width + max(o[1] for o in offsets)
    scene = _scene(photo, span_x, span_y)
    top, left = (scene.shape[0] - span_y) // 2, (scene.shape[1] - span_x) // 2  # the middle of the photo
    return [np.ascontiguousarray(scene[top + y:top + y + height, left + x:left + x + width]) for y, x in offsets]


def sensor_noise(frames: Sequence[np.ndarray], sigma: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Independent Gaussian noise of ``sigma`` (in [0, 1] units) on every pixel of every frame, rounded to uint8."""
    return [np.clip(f + rng.normal(0.0, sigma * 255.0, f.shape), 0, 255).round().astype(np.uint8) for f in frames]


def exposure_flicker(frames: Sequence[np.ndarray], gain: float = 0.15, bias: float = 0.06,
                     period: float = 6.0) -> list[np.ndarray]:
    """Brightness and contrast oscillating: ``(x − ½)·(1 + gain·sin) + ½ + bias·cos`` with ``period`` frames."""
    out = []
    for t, frame in enumerate(frames):
        phase = 2 * np.pi * t / period
        x = frame.astype(np.float32) / 255.0
        y = (x - 0.5) * (1 + gain * np.sin(phase)) + 0.5 + bias * np.cos(phase)
        out.append((np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8))
    return out


def tone(seconds: float, sample_rate: int = 48000, hz: float = 440.0, channels: int = 2) -> np.ndarray:
    """A sine tone as float32 ``channels×samples`` (planar), the audio track of test clips."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    wave = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.repeat(wave[None], channels, axis=0)


def write_clip(target: str | os.PathLike[str] | io.BytesIO, frames: Sequence[np.ndarray], fps: float = 24, *,
               codec: str = "libx264", crf: int | None = 18, pix_fmt: str = "yuv420p", fmt: str | None = None,
               audio: np.ndarray | None = None, sample_rate: int = 48000, audio_codec: str = "aac",
               rotation: int = 0) -> None:
    """Encode uint8 RGB frames (and an optional planar float audio track) into a file or buffer with PyAV.

    ``fmt`` names the container when ``target`` is a buffer (e.g. ``"mp4"``); ``rotation`` (degrees,
    counter-clockwise) is written as display-matrix metadata, as phones do.
    """
    import av

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(target, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = pix_fmt
        if crf is not None and codec == "libx264":
            stream.options = {"crf": str(crf)}
        if rotation:
            stream.set_display_rotation(rotation)
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream(audio_codec, rate=sample_rate)
            audio_stream.layout = "stereo" if audio.shape[0] == 2 else "mono"
        for index, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            video_frame.pts = index
            video_frame.time_base = 1 / rate
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
        if audio_stream is not None and audio is not None:
            _write_audio(container, audio_stream, audio, sample_rate)


def _write_audio(container: object, stream: object, audio: np.ndarray, sample_rate: int) -> None:
    import av

    chunk = 1024
    layout = "stereo" if audio.shape[0] == 2 else "mono"
    for start in range(0, audio.shape[1], chunk):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, start:start + chunk]), format="fltp",
                                           layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        container.mux(stream.encode(frame))  # type: ignore[attr-defined]
    container.mux(stream.encode())  # type: ignore[attr-defined]


def x264_roundtrip(frames: Sequence[np.ndarray], fps: int = 24, crf: int = 12) -> list[np.ndarray]:
    """Frames after an H.264 encode (yuv420p, ``crf``) and decode, as a camera's file would deliver them."""
    import av

    buffer = io.BytesIO()
    write_clip(buffer, frames, fps, crf=crf, fmt="mp4")
    buffer.seek(0)
    with av.open(buffer, "r") as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def handheld_clip(photo: np.ndarray, *, size: tuple[int, int] = (320, 240), frames: int = 24, seed: int = 0,
                  noise: float = 2 / 255, crf: int | None = 12) -> Clip:
    """The issue's handheld clip: 1–2 px jitter per frame, sensor noise ``noise``, x264 at ``crf`` (None: raw)."""
    rng = np.random.default_rng(seed)
    offsets = handheld_offsets(frames, rng)
    clip = sensor_noise(render_windows(photo, offsets, size), noise, rng)
    return Clip("handheld", x264_roundtrip(clip, crf=crf) if crf is not None else clip, offsets)


def exposure_clip(photo: np.ndarray, *, size: tuple[int, int] = (320, 240), frames: int = 24, seed: int = 0,
                  noise: float = 2 / 255, crf: int | None = 12) -> Clip:
    """A still camera whose exposure hunts (:func:`exposure_flicker`), with noise and the x264 round trip."""
    rng = np.random.default_rng(seed)
    offsets = [(0, 0)] * frames
    clip = sensor_noise(exposure_flicker(render_windows(photo, offsets, size)), noise, rng)
    return Clip("exposure", x264_roundtrip(clip, crf=crf) if crf is not None else clip, offsets)


def pan_clip(photo: np.ndarray, *, size: tuple[int, int] = (320, 240), frames: int = 24, speed: int = 8,
             seed: int = 0, noise: float = 2 / 255, crf: int | None = 12) -> Clip:
    """A steady pan, ``speed`` px per frame: every frame shows new content at its right edge."""
    rng = np.random.default_rng(seed)
    offsets = pan_offsets(frames, speed)
    clip = sensor_noise(render_windows(photo, offsets, size), noise, rng)
    return Clip("pan", x264_roundtrip(clip, crf=crf) if crf is not None else clip, offsets)

"""Reading a video: probing it, decoding its frames upright as RGB, and handing over its audio packets, all streamed.

Why PyAV: it is FFmpeg as a library, so any container and codec FFmpeg decodes works, with the exact timestamps
and the display matrix (phone videos are stored sideways with a rotation flag). Animated WebP is the exception:
this FFmpeg cannot decode animated WebP, so such files are read frame by frame with Pillow.

Nothing here holds more than one decoded frame: :func:`iter_frames` is a generator over the decoder, and
:class:`AudioFeed` opens the file a second time and walks its audio packets independently, so the writer
can interleave audio with video as the video is produced.

The errors a user can meet are one-line :class:`VideoError` messages: not a video, a still image, no video stream,
zero frames, truncated or corrupt, an undecodable codec.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from styler.errors import StylerError

__all__ = ["VideoError", "VideoInfo", "Frame", "probe", "iter_frames", "AudioFeed"]

#: File signatures of containers a video is stored in: a file that starts like one but does not open is truncated.
_VIDEO_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"), (0, b"GIF8"), (0, b"OggS"), (0, b"FLV"),
                (0, b"\x00\x00\x01\xba"))
#: Demuxers that read single pictures, not videos.
_STILL_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "tiff_pipe", "webp_pipe", "ppm_pipe", "pgm_pipe",
                  "pam_pipe", "jpegxl_pipe", "qoi_pipe", "psd_pipe", "svg_pipe")


class VideoError(StylerError):
    """A video could not be read, decoded or written (the message names the file and what is wrong)."""


@dataclass
class VideoInfo:
    """What the input is: container and codec, the coded size, the rotation to display it, rate and length.

    ``frames`` and ``duration`` are what the file declares (None when it does not say); ``rotation`` is the
    counter-clockwise rotation the display matrix asks for (0, 90, 180, 270); ``origin`` is the video stream's
    start time, the zero of every time styler reports (audio is shifted by the same amount, so sync is kept);
    ``pillow`` marks an animated WebP.
    """

    path: Path
    format_name: str
    codec: str
    width: int
    height: int
    rotation: int
    rate: Fraction
    time_base: Fraction
    frames: int | None
    duration: float | None
    audio_codec: str | None = None
    origin: Fraction = Fraction(0)
    pillow: bool = False

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown, after the rotation."""
        return (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)


@dataclass
class Frame:
    """One decoded frame: upright uint8 RGB ``H×W×3``, and its presentation time in seconds from the clip's start."""

    rgb: np.ndarray
    time: Fraction


def _sniff(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return any(head[at:at + len(magic)] == magic for at, magic in _VIDEO_MAGIC) or head[:1] == b"\x47"


def _open(path: Path) -> Any:
    """``av.open`` with FFmpeg's failures turned into messages that say what is wrong with the file."""
    import av

    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a directory, not a video")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file")
    try:
        return av.open(str(path), "r")
    except av.error.EOFError as exc:
        raise VideoError(f"{path}: ends before its first frame (a zero-frame or truncated video)") from exc
    except av.error.FFmpegError as exc:
        if _sniff(path):
            raise VideoError(f"{path}: truncated or corrupt video (FFmpeg: {exc.strerror})") from exc
        raise VideoError(f"{path}: not a video FFmpeg can read (FFmpeg: {exc.strerror})") from exc


def _stream_duration(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION")  # Matroska writes each track's length as a tag
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            pass
    return None


def _animated_webp(path: Path) -> VideoInfo:
    from PIL import Image

    with Image.open(path) as img:
        frames = getattr(img, "n_frames", 1)
        if frames < 2:
            raise VideoError(f"{path}: a still image, not a video; stylize it with 'styler apply'")
        total_ms = 0
        for index in range(frames):
            img.seek(index)
            img.load()  # the frame's duration is known once it is decoded
            total_ms += int(img.info.get("duration") or 100)
        rate = Fraction(frames * 1000, max(1, total_ms)).limit_denominator(1001)
        return VideoInfo(path, "webp", "webp", img.width, img.height, 0, rate, Fraction(1, 1000), frames,
                         total_ms / 1000, pillow=True)


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Open ``path`` and describe its first video stream (and whether it has audio); raises :class:`VideoError`."""
    path = Path(path)
    with _open(path) as container:
        name = container.format.name
        if not container.streams.video:
            what = "audio only" if container.streams.audio else "no video stream (an empty or zero-frame file)"
            raise VideoError(f"{path}: {what}; nothing to stylize")
        if name in _STILL_FORMATS:
            if name == "webp_pipe":
                return _animated_webp(path)
            raise VideoError(f"{path}: a still image, not a video; stylize it with 'styler apply'")
        stream = container.streams.video[0]
        codec = stream.codec_context
        if codec is None or not codec.name or codec.width <= 0 or codec.height <= 0:
            raise VideoError(f"{path}: video stream without a decodable codec or size (unsupported input)")
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        duration = _stream_duration(container, stream)
        if duration is None and container.duration:
            duration = container.duration / 1_000_000
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        time_base = Fraction(stream.time_base or Fraction(1, 1000))
        return VideoInfo(path, name, codec.name, codec.width, codec.height, _rotation(container, stream),
                         Fraction(rate), time_base, stream.frames or None, duration, audio,
                         Fraction(stream.start_time or 0) * time_base)


def _rotation(container: Any, stream: Any) -> int:
    """The display rotation (counter-clockwise degrees, a multiple of 90) from the first frame's display matrix."""
    try:
        for frame in container.decode(stream):
            return int(round(frame.rotation / 90.0)) * 90 % 360
    except Exception:  # a broken first frame: the decode pass reports it properly
        return 0
    return 0


def iter_frames(info: VideoInfo, *, start: float = 0.0, duration: float | None = None,
                size: tuple[int, int] | None = None) -> Iterator[Frame]:
    """Decode the frames shown in ``[start, start + duration)``, upright, resized to ``size`` (display width,
    height) when given. Times are relative to ``start``.

    Raises :class:`VideoError` when the file holds no frame in that range, or ends early (truncated).
    """
    frames = _pillow_frames(info, size) if info.pillow else _av_frames(info, start, size)
    end = None if duration is None else Fraction(start) + Fraction(duration)
    count, last = 0, Fraction(-1)
    for frame in frames:
        if frame.time < start - 1e-9:
            continue
        if end is not None and frame.time >= end:
            break
        last = frame.time
        count += 1
        yield Frame(frame.rgb, frame.time - Fraction(start))
    if count == 0:
        if start or duration is not None:
            raise VideoError(f"{info.path}: no video frames between {start:g} s and "
                             + ("the end" if end is None else f"{float(end):g} s"))
        declared = f" although it declares {info.duration:.2f} s: truncated or corrupt" if info.duration else ""
        raise VideoError(f"{info.path}: no video frame could be decoded{declared}")
    if end is None and info.duration and not info.pillow:
        interval = 1 / float(info.rate) if info.rate else 0.04
        if float(last) + interval < info.duration - max(3 * interval, 0.02 * info.duration):
            raise VideoError(f"{info.path}: truncated video: frames stop at {float(last):.2f} s of "
                             f"{info.duration:.2f} s")


def _av_frames(info: VideoInfo, start: float, size: tuple[int, int] | None) -> Iterator[Frame]:
    import av

    with _open(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = info.origin
        if start > 0:
            # not seekable (e.g. a pipe-like format): decode from the start and skip
            with contextlib.suppress(av.error.FFmpegError):
                container.seek(int((Fraction(start) + origin) / info.time_base), stream=stream)
        coded = None if size is None else (size if info.rotation in (0, 180) else (size[1], size[0]))
        index = 0
        try:
            for frame in container.decode(stream):
                time = (Fraction(frame.pts) * info.time_base - origin if frame.pts is not None
                        else Fraction(index) / info.rate)
                index += 1
                yield Frame(_to_rgb(frame, coded, info.rotation), time)
        except av.error.FFmpegError as exc:
            raise VideoError(f"{info.path}: decoding failed after {index} frames; truncated or corrupt "
                             f"(FFmpeg: {exc.strerror})") from exc


def _to_rgb(frame: Any, coded: tuple[int, int] | None, rotation: int) -> np.ndarray:
    """A decoded frame as uint8 RGB: scaled by swscale (area filter) in its own colourspace and range, then rotated
    upright."""
    width, height = coded if coded is not None else (frame.width, frame.height)
    rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA",
                         src_color_range=frame.color_range or None).to_ndarray()
    return np.ascontiguousarray(np.rot90(rgb, rotation // 90)) if rotation else rgb


def _pillow_frames(info: VideoInfo, size: tuple[int, int] | None) -> Iterator[Frame]:
    from PIL import Image

    with Image.open(info.path) as img:
        elapsed = 0
        for index in range(info.frames or 1):
            img.seek(index)
            rgb = img.convert("RGB")
            if size is not None and rgb.size != size:
                rgb = rgb.resize(size, Image.Resampling.LANCZOS)
            yield Frame(np.asarray(rgb, dtype=np.uint8), Fraction(elapsed, 1000))
            elapsed += int(img.info.get("duration") or 100)


class AudioFeed:
    """The first audio stream's packets in ``[start, start + duration)`` (seconds from the video's start), read
    through a second handle on the file so that the writer can interleave them with video as it is produced.

    ``stream`` is the input audio stream (the writer copies it as a template or decodes with its codec); packets
    keep their own timestamps (:class:`styler.video.sink.VideoSink` shifts them by :attr:`offset`). A context
    manager; :meth:`close` is idempotent.
    """

    def __init__(self, info: VideoInfo, *, start: float = 0.0, duration: float | None = None) -> None:
        import av

        self._container = _open(info.path)
        self.stream = self._container.streams.audio[0]
        #: Where the output's time zero lies on this stream's clock, in seconds.
        self.offset = float(info.origin) + start
        self._end = None if duration is None else self.offset + duration
        if start > 0:
            with contextlib.suppress(av.error.FFmpegError):
                self._container.seek(int(self.offset / self.stream.time_base), stream=self.stream)

    def __enter__(self) -> AudioFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def time(self, packet: Any) -> float:
        """A packet's time in seconds on the output's clock."""
        return float(packet.pts * self.stream.time_base) - self.offset

    def __iter__(self) -> Iterator[Any]:
        import av

        try:
            for packet in self._container.demux(self.stream):
                if packet.pts is None or packet.size == 0:
                    continue
                time = self.time(packet)
                if time < -1e-6:
                    continue
                if self._end is not None and time + self.offset >= self._end:
                    break
                yield packet
        except av.error.FFmpegError:  # a damaged audio tail: keep what was read
            return

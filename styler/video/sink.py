"""Writing the stylized video: the encoder for the output's container, frame timestamps, and the audio track.

Why per-suffix formats: the output file name says what the user wants (``.mp4`` plays everywhere, ``.gif`` and
``.webp`` embed in pages), and each container dictates its codec: H.264 in yuv420p (even width and height) for
MP4/MOV/MKV, VP9 for WebM, a 256-colour palette per frame for GIF, libwebp for animated WebP. YUV outputs are
converted from RGB as BT.709 limited range and tagged so, which is what players assume for modern video.

Timestamps: every frame keeps its source presentation time (shifted to start at 0), so the frame count, the frame
rate, and variable frame rates are kept. Audio: the input's first audio stream is copied packet by packet when the
output container can hold its codec, otherwise decoded and re-encoded with the container's default audio codec
(e.g. PCM into MP4 becomes AAC); GIF and WebP have no audio, so it is dropped with a warning. Audio packets are
muxed as the video reaches their time, so nothing is buffered beyond what FFmpeg's interleaver keeps.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from styler.video.source import AudioFeed, VideoError

__all__ = ["OutputFormat", "OUTPUT_FORMATS", "output_format", "VideoSink"]


@dataclass(frozen=True)
class OutputFormat:
    """How one output suffix is written: FFmpeg muxer, video codec, pixel format, whether it can carry audio,
    and whether the codec needs even dimensions."""

    muxer: str
    codec: str
    pix_fmt: str
    audio: bool = True
    even: bool = True


OUTPUT_FORMATS: dict[str, OutputFormat] = {
    ".mp4": OutputFormat("mp4", "libx264", "yuv420p"),
    ".m4v": OutputFormat("mp4", "libx264", "yuv420p"),
    ".mov": OutputFormat("mov", "libx264", "yuv420p"),
    ".mkv": OutputFormat("matroska", "libx264", "yuv420p"),
    ".webm": OutputFormat("webm", "libvpx-vp9", "yuv420p"),
    ".gif": OutputFormat("gif", "gif", "pal8", audio=False, even=False),
    ".webp": OutputFormat("webp", "libwebp_anim", "bgra", audio=False, even=False),
}


def output_format(path: str | os.PathLike[str]) -> OutputFormat:
    """The :class:`OutputFormat` of an output path's suffix; a clear error for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise VideoError(f"{path}: unsupported output format {suffix or '(no suffix)'!r}; use one of "
                         f"{', '.join(OUTPUT_FORMATS)}")
    return OUTPUT_FORMATS[suffix]


def _video_options(fmt: OutputFormat, crf: int) -> dict[str, str]:
    if fmt.codec == "libx264":
        return {"crf": str(crf), "preset": "medium"}
    if fmt.codec == "libvpx-vp9":  # constant quality: crf with a zero bitrate target
        return {"crf": str(min(63, crf + 13)), "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}
    if fmt.codec == "libwebp_anim":
        return {"quality": str(max(10, 100 - 2 * crf)), "loop": "0"}
    return {}


def _palette_frame(rgb: np.ndarray) -> Any:
    """A pal8 frame with this frame's own 256-colour palette (fast octree: 17× faster than median cut at 320×240
    for a mean error of 3.4 instead of 2.7 levels; no dithering: dither patterns that move from frame to frame
    are flicker of their own)."""
    import av
    from PIL import Image

    quantized = Image.fromarray(rgb).quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    colours = np.asarray((quantized.getpalette() or [])[:768], dtype=np.uint8).reshape(-1, 3)
    palette = np.zeros((256, 4), dtype=np.uint8)
    palette[:, 0] = 255  # ARGB: opaque
    palette[:len(colours), 1:] = colours
    pair: Any = (np.asarray(quantized, dtype=np.uint8), palette)  # pal8 takes (indices, ARGB palette)
    return av.VideoFrame.from_ndarray(pair, format="pal8")


class VideoSink:
    """An open output file: :meth:`write` frames in order, then :meth:`close` (or :meth:`abort` on failure).

    Args:
        target: the file to write (a temporary name is fine: the muxer is chosen from ``fmt``, not the suffix).
        fmt: the output format (:func:`output_format` of the final name).
        size: (width, height) of every frame (even for codecs that need it).
        rate: the nominal frame rate (recorded in the container).
        time_base: the clock frame times are expressed on (the input stream's: keeps its timestamps exact).
        audio: the input's audio, or None for a silent output.
        warnings: where notes for the user are appended (audio dropped or re-encoded).
    """

    def __init__(self, target: str | os.PathLike[str] | io.BytesIO, fmt: OutputFormat, size: tuple[int, int], *,
                 rate: Fraction, time_base: Fraction, crf: int = 18, audio: AudioFeed | None = None,
                 warnings: list[str] | None = None) -> None:
        import av

        if fmt.even and (size[0] % 2 or size[1] % 2):
            raise ValueError(f"{fmt.codec} needs even dimensions, got {size[0]}×{size[1]}")
        self.fmt = fmt
        self.warnings = warnings if warnings is not None else []
        self.frames = 0
        self._last_pts = -1
        self._container: Any = av.open(target, "w", format=fmt.muxer)
        try:
            self._video = self._add_video(fmt, size, rate, time_base, crf)
            self._audio = self._add_audio(audio)
        except Exception:
            self._container.close()
            raise

    def _add_video(self, fmt: OutputFormat, size: tuple[int, int], rate: Fraction, time_base: Fraction,
                   crf: int) -> Any:
        stream: Any = self._container.add_stream(fmt.codec, rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = fmt.pix_fmt
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.options = _video_options(fmt, crf)
        if fmt.pix_fmt.startswith("yuv"):
            context = stream.codec_context
            context.colorspace, context.color_primaries, context.color_trc = 1, 1, 1  # BT.709
            context.color_range = 1  # limited ("MPEG") range
        return stream

    def _add_audio(self, feed: AudioFeed | None) -> _AudioTrack | None:
        import av

        if feed is None:
            return None
        if not self.fmt.audio:
            self.warnings.append(f"the input's audio is dropped: {self.fmt.muxer.upper()} has no audio track")
            return None
        codec = feed.stream.codec_context.name
        if codec in self._container.supported_codecs:
            return _AudioTrack(self._container, feed, self._container.add_stream_from_template(feed.stream), None)
        target = self._container.default_audio_codec
        if target == "opus" and "libopus" in av.codecs_available:  # FFmpeg's own Opus encoder is experimental
            target = "libopus"
        self.warnings.append(f"audio re-encoded from {codec} to {target}: {self.fmt.muxer} cannot hold {codec}")
        source = feed.stream.codec_context
        stream: Any = self._container.add_stream(target, rate=source.sample_rate or 48000)
        stream.layout = source.layout.name if source.layout and len(source.layout.channels) <= 2 else "stereo"
        return _AudioTrack(self._container, feed, stream, source)

    def write(self, rgb: np.ndarray, time: Fraction) -> None:
        """Encode one uint8 RGB frame shown at ``time`` seconds (after any audio that comes before it)."""
        import av

        if self._audio is not None:
            self._audio.until(float(time))
        if self.fmt.pix_fmt == "pal8":
            frame = _palette_frame(rgb)
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if self.fmt.pix_fmt.startswith("yuv"):
                frame = frame.reformat(format=self.fmt.pix_fmt, dst_colorspace="ITU709", dst_color_range=1)
        pts = max(self._last_pts + 1, round(time / self._video.codec_context.time_base))
        frame.pts, frame.time_base = pts, self._video.codec_context.time_base
        self._last_pts = pts
        self._mux(self._video.encode(frame))
        self.frames += 1

    def _mux(self, packets: Any) -> None:
        import av

        try:
            self._container.mux(packets)
        except av.error.FFmpegError as exc:
            raise VideoError(f"writing the video failed (FFmpeg: {exc.strerror})") from exc

    def close(self) -> None:
        """Flush the encoders and the rest of the audio, and finish the file."""
        self._mux(self._video.encode())
        if self._audio is not None:
            self._audio.until(None)
        self._container.close()

    def abort(self) -> None:
        """Close without finishing (the caller removes the file)."""
        with contextlib.suppress(Exception):  # the file is discarded; a second error would only hide the first
            self._container.close()


class _AudioTrack:
    """The output's audio stream, fed from an :class:`AudioFeed` as the video advances.

    ``decoder`` None: packets are copied (timestamps shifted to the output's zero); otherwise they are decoded
    with it, resampled to what the encoder takes, and re-encoded.
    """

    def __init__(self, container: Any, feed: AudioFeed, stream: Any, decoder: Any) -> None:
        import av

        self._container, self._feed, self._stream, self._decoder = container, feed, stream, decoder
        self._packets = iter(feed)
        self._pending: Any = None
        self._samples = 0
        self._resampler = None if decoder is None else av.AudioResampler(
            format=stream.codec_context.codec.audio_formats[0].name, layout=stream.layout.name,
            rate=stream.codec_context.sample_rate)

    def until(self, time: float | None) -> None:
        """Mux every audio packet before ``time`` seconds (None: all that remain, then flush)."""
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                break
            if time is not None and self._feed.time(packet) > time:
                self._pending = packet
                return
            self._copy(packet) if self._decoder is None else self._transcode(packet)
        if self._decoder is not None:
            self._encode(None)

    def _copy(self, packet: Any) -> None:
        shift = round(self._feed.offset / packet.time_base)
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self._stream
        self._container.mux(packet)

    def _transcode(self, packet: Any) -> None:
        for frame in self._decoder.decode(packet):
            self._encode(frame)

    def _encode(self, frame: Any) -> None:
        assert self._resampler is not None
        for out in self._resampler.resample(frame):
            out.pts = self._samples
            out.time_base = Fraction(1, out.sample_rate)
            self._samples += out.samples
            self._container.mux(self._stream.encode(out))
        if frame is None:
            self._container.mux(self._stream.encode(None))

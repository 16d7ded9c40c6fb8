"""``styler video`` as a library call: probe, decode, stylize with the temporal routes, encode, rename into place.

Why a temporary file: encoding takes minutes and can be interrupted (Ctrl-C, SIGTERM, a full disk, a decode error
in the last second of the input). Everything is written to ``.NAME.PID.tmp`` beside the target
(:func:`styler.io.tempfiles.temp_path`), in the target's folder so the final rename is atomic, and renamed only once
the container is finished; on any failure, including :class:`KeyboardInterrupt` (SIGTERM becomes one in the CLI),
the temporary file is removed and the error goes on up. So the target either does not change or is a complete
video.

Memory does not depend on the clip's length: frames are decoded one at a time, at most one batch is held by the
stylizer, and audio packets are copied as the video reaches them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from styler.errors import StylerError
from styler.infer.options import StylizeOptions
from styler.io.tempfiles import clean_stale_temp_files, temp_path
from styler.video.sink import OUTPUT_FORMATS, OutputFormat, VideoSink, output_format
from styler.video.source import AudioFeed, Frame, VideoError, VideoInfo, iter_frames, probe
from styler.video.temporal import FrameStylizer, TemporalSettings

__all__ = ["VideoOptions", "VideoResult", "open_video_stylizer", "default_output", "frame_size", "check_output",
           "stylize_video"]


@dataclass
class VideoOptions:
    """Options of :func:`stylize_video` (``styler video --help`` explains each)."""

    max_size: int | None = None
    start: float = 0.0
    duration: float | None = None
    crf: int = 18
    batch_size: int = 4
    force: bool = False
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    stylize: StylizeOptions = field(default_factory=StylizeOptions)


@dataclass
class VideoResult:
    """What was written: file, frames, size, time taken and throughput, the audio's fate, and notes."""

    output: Path
    frames: int
    size: tuple[int, int]
    rate: Fraction
    seconds: float
    audio: str
    temporal: str
    warnings: list[str]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def open_video_stylizer(model: Any, *, style: str | None = None, temporal: TemporalSettings | None = None,
                        **kwargs: Any) -> Any:
    """A :class:`~styler.infer.stylizer.Stylizer` for a video, with ``style`` (a multi-style model's style or
    blend) on the requested backend; for the ``stats`` route, on eager torch over a copy of the model whose norms
    are smoothed across frames (their averages run inside the network)."""
    from styler.infer.stylizer import Stylizer

    temporal = temporal or TemporalSettings()
    if "stats" not in temporal.routes:
        return Stylizer(model, style=style, **kwargs)
    if kwargs.get("backend", "auto") not in ("auto", "torch"):
        raise StylerError("--temporal stats runs the network on eager torch; leave --backend at auto")
    from styler.infer.backends import ModelHandle
    from styler.video.statsmooth import smoothed_model

    loaded = smoothed_model(ModelHandle.of(model).load(), temporal.decay)
    return Stylizer(loaded, style=style, **{**kwargs, "backend": "torch"})  # type: ignore[arg-type]


def default_output(source: str | os.PathLike[str], model_name: str) -> Path:
    """``NAME_<model>.EXT`` beside the input; the input's suffix when styler writes it, else ``.mp4``."""
    path = Path(source)
    suffix = path.suffix.lower() if path.suffix.lower() in OUTPUT_FORMATS else ".mp4"
    return path.with_name(f"{path.stem}_{model_name}{suffix}")


def frame_size(info: VideoInfo, fmt: OutputFormat, max_size: int | None) -> tuple[tuple[int, int] | None,
                                                                                   tuple[int, int]]:
    """(size to decode at, or None for the coded size; size written): ``--max-size`` caps the long side, and
    codecs that need even dimensions get them (by resizing when resizing anyway, else by cropping one pixel)."""
    from styler.infer.sizing import processing_size

    width, height = info.display_size
    decode = processing_size((width, height), max_size=max_size)
    if decode == (width, height):
        written = (width - width % 2, height - height % 2) if fmt.even else (width, height)
        return None, written
    if fmt.even:
        decode = (max(2, decode[0] - decode[0] % 2), max(2, decode[1] - decode[1] % 2))
    return decode, decode


def check_output(source: str | os.PathLike[str], target: str | os.PathLike[str], force: bool) -> OutputFormat:
    """The output's format, after checking that writing ``target`` is allowed (not the input, not a folder,
    not an existing file without ``force``, in an existing folder)."""
    source, target = Path(source), Path(target)
    fmt = output_format(target)
    if target.exists() and source.exists() and os.path.samefile(source, target):
        raise VideoError(f"{target}: the output would overwrite the input")
    if target.is_dir():
        raise VideoError(f"{target}: is a directory; give an output file name")
    if target.exists() and not force:
        raise VideoError(f"{target}: exists; use --force to overwrite it")
    if not target.parent.is_dir():
        raise VideoError(f"{target.parent}: no such directory")
    return fmt


def _estimated_frames(info: VideoInfo, options: VideoOptions) -> int | None:
    length = info.duration
    if length is not None:
        length = max(0.0, length - options.start)
    if options.duration is not None:
        length = options.duration if length is None else min(length, options.duration)
    if length is not None and info.rate:
        return max(1, round(length * float(info.rate)))
    return info.frames


def stylize_video(source: str | os.PathLike[str] | VideoInfo, target: str | os.PathLike[str], stylizer: Any,
                  options: VideoOptions | None = None, *, on_start: Callable[[int | None], None] | None = None,
                  on_frame: Callable[[], None] | None = None) -> VideoResult:
    """Stylize the video ``source`` (a path, or what :func:`~styler.video.source.probe` said about it) into
    ``target`` (format from its suffix); see the module docstring.

    ``on_start(total)`` gets the expected frame count (None if unknown) once decoding starts, ``on_frame()`` is
    called after every written frame (the CLI's progress bar).
    """
    options = options or VideoOptions()
    info = source if isinstance(source, VideoInfo) else probe(source)
    target = Path(target)
    fmt = check_output(info.path, target, options.force)
    clean_stale_temp_files(target.parent, {target.name})  # what a killed earlier run of this target left
    decode_size, size = frame_size(info, fmt, options.max_size)
    warnings: list[str] = []
    started = time.perf_counter()
    temp = temp_path(target)
    with contextlib.ExitStack() as stack:
        feed = None
        if info.audio_codec is not None:
            feed = stack.enter_context(AudioFeed(info, start=options.start, duration=options.duration))
        try:
            sink = VideoSink(temp, fmt, size, rate=info.rate, time_base=info.time_base, crf=options.crf,
                             audio=feed, warnings=warnings)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        try:
            if on_start is not None:
                on_start(_estimated_frames(info, options))
            frames = iter_frames(info, start=options.start, duration=options.duration, size=decode_size)
            _run(frames, size, stylizer, options, sink, on_frame)
            sink.close()
            os.replace(temp, target)
        except BaseException:
            sink.abort()
            temp.unlink(missing_ok=True)
            raise
    audio = "none" if feed is None else ("dropped" if not fmt.audio else
                                         "re-encoded" if any("re-encoded" in w for w in warnings) else "copied")
    return VideoResult(target, sink.frames, size, info.rate, time.perf_counter() - started, audio,
                       options.temporal.label, warnings)


def _run(frames: Iterator[Frame], size: tuple[int, int], stylizer: Any, options: VideoOptions, sink: VideoSink,
         on_frame: Callable[[], None] | None) -> None:
    """Frames → (cropped to the written size) → stylized in batches → sink, with each frame's time carried along."""
    times: deque[Fraction] = deque()
    width, height = size

    def pictures() -> Iterator[Any]:
        for frame in frames:
            times.append(frame.time)
            yield frame.rgb[:height, :width]

    runner = FrameStylizer(stylizer, options.temporal, options.stylize, batch_size=options.batch_size)
    for styled in runner.run(pictures()):
        sink.write(styled, times.popleft())
        if on_frame is not None:
            on_frame()

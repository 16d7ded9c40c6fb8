"""``styler video``: a thin click command over :func:`styler.video.pipeline.stylize_video`.

It parses the options, opens the stylizer, shows a progress bar (frames/s and ETA) and prints one summary line
(or ``--json``). Exit codes: 0 written; 1 an error with a one-line message (not a video, no frames, truncated,
unsupported format, output exists, ...); 2 usage error; 130 interrupted by Ctrl-C or SIGTERM, in which case the
partly written temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from styler.cli.signals import sigterm_as_interrupt
from styler.infer.backends import BACKENDS, PRECISIONS

EXIT_INTERRUPTED = 130


def _seconds(text: str | None, name: str) -> float | None:
    """``90``, ``1:30`` or ``0:01:30.5`` as seconds; a usage error otherwise."""
    if text is None:
        return None
    try:
        value = 0.0
        for part in text.strip().split(":"):
            value = value * 60 + float(part)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a time; write seconds (90, 2.5) or [HH:]MM:SS",
                                 param_hint=name) from None
    if value < 0 or value != value:
        raise click.BadParameter(f"{text!r} must not be negative", param_hint=name)
    return value


class _Progress:
    """A tqdm bar over frames on stderr (frames/s and ETA), opened when the frame count is known."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def start(self, total: int | None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="frame", disable=self.quiet or None, file=sys.stderr, leave=False,
                        dynamic_ncols=True)

    def frame(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", metavar="INPUT")
@click.option("-o", "--output", help="Output file; its suffix picks the format: .mp4 (H.264, default), .mov, .mkv, "
              ".m4v, .webm (VP9), .gif, .webp [default: INPUT_<model>.mp4 (or the input's suffix)].")
@click.option("-m", "--model", help="Model file or a bundled model's name [default: the default model].")
@click.option("--style", help="Multi-style models: a style name or a blend, e.g. great_wave:0.6,starry_night:0.4.")
@click.option("--max-size", type=click.IntRange(min=8), help="Cap the long side (pixels) of the output.")
@click.option("--start", help="Start at this time (seconds or [HH:]MM:SS) [default: 0].")
@click.option("--duration", help="Stylize only this long (seconds or [HH:]MM:SS) [default: to the end].")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True,
              help="Quality: H.264 CRF (lower is better and larger; 18 looks lossless); mapped for VP9/WebP.")
@click.option("--temporal", default="on", show_default=True, help="Flicker reduction: on (grid+flow), off (every "
              "frame on its own), or routes joined by '+': grid (keep the scene on the network's 4-px grid), "
              "flow (blend the warped previous frame), stats (smooth norm statistics; eager torch).")
@click.option("--blend", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Weight of the warped previous frame in the flow route [default: 0.3].")
@click.option("--preserve-color", is_flag=True, help="Keep the video's colours; luminance from the stylized frame.")
@click.option("--strength", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Blend with the input: 0 = input, 1 = fully stylized.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Frames stylized together.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--backend", type=click.Choice(list(BACKENDS)), default="auto", show_default=True,
              help="Network runtime (see 'styler apply --help'); compiled pays off on long clips.")
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default="auto", show_default=True,
              help="torch/compiled backends: fp32 or bf16.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads [default: runtime's].")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output (never the input).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or warnings.")
def video(source: str, output: str | None, model: str | None, style: str | None, max_size: int | None,
          start: str | None, duration: str | None, crf: int, temporal: str, blend: float | None,
          preserve_color: bool, strength: float, batch_size: int, device: str, backend: str, precision: str,
          threads: int | None, force: bool, as_json: bool, quiet: bool) -> None:
    """Stylize a video (any format FFmpeg reads, animated GIF/WebP too), keeping its frames, rate and sound.

    Flicker is reduced by default (--temporal on); the output appears only when it is complete.
    """
    from styler.cli import UserError
    from styler.errors import StylerError
    from styler.infer.options import StylizeOptions
    from styler.video.pipeline import VideoOptions
    from styler.video.temporal import TemporalSettings

    try:
        settings = TemporalSettings.parse(temporal, blend=blend)
    except StylerError as exc:
        raise click.BadParameter(str(exc), param_hint="--temporal") from exc
    start_s, duration_s = _seconds(start, "--start") or 0.0, _seconds(duration, "--duration")
    if duration_s is not None and duration_s <= 0:
        raise click.BadParameter("must be positive", param_hint="--duration")
    if precision == "bf16" and backend in ("auto", "onnx"):
        raise click.UsageError("--precision bf16 needs --backend compiled or torch (ONNX Runtime runs fp32)")
    options = VideoOptions(max_size=max_size, start=start_s, duration=duration_s, crf=crf, batch_size=batch_size,
                           force=force, temporal=settings,
                           stylize=StylizeOptions(preserve_color="ycbcr" if preserve_color else None,
                                                  strength=strength))
    runtime = {"device": device, "backend": backend, "threads": threads, "precision": precision}
    progress = _Progress(quiet)
    try:
        with sigterm_as_interrupt():
            result, stylizer = _execute(source, output, model, style, options, runtime, progress)
    except KeyboardInterrupt:
        progress.close()
        click.echo("Interrupted; nothing was written.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except StylerError as exc:
        progress.close()
        raise UserError(str(exc)) from exc
    progress.close()
    _report(result, stylizer, as_json, quiet)


def _execute(source: str, output: str | None, model: str | None, style: str | None, options: Any,
             runtime: dict[str, Any], progress: _Progress) -> tuple[Any, Any]:
    """Check the output, probe the input, open the stylizer, run; cheap failures come before the model loads."""
    from styler.video.pipeline import check_output, default_output, open_video_stylizer, stylize_video
    from styler.video.source import probe

    if output is not None:
        check_output(source, output, options.force)
    info = probe(source)
    stylizer = open_video_stylizer(model, style=style, temporal=options.temporal, **runtime)
    target = output or default_output(source, stylizer.name)
    result = stylize_video(info, target, stylizer, options, on_start=progress.start, on_frame=progress.frame)
    return result, stylizer


def _report(result: Any, stylizer: Any, as_json: bool, quiet: bool) -> None:
    notes = list(stylizer.notes) + list(result.warnings)
    if as_json:
        click.echo(json.dumps({"output": str(result.output), "frames": result.frames, "width": result.size[0],
                               "height": result.size[1], "fps": str(result.rate), "audio": result.audio,
                               "temporal": result.temporal, "model": stylizer.name, "backend": stylizer.backend,
                               "seconds": round(result.seconds, 3), "frames_per_second": round(result.fps, 3),
                               "warnings": notes}, indent=2))
        return
    if not quiet:
        for note in notes:
            click.echo(f"warning: {note}", err=True)
        click.echo(f"wrote {result.output}: {result.frames} frames, {result.size[0]}×{result.size[1]} at "
                   f"{float(result.rate):.3g} fps, audio {result.audio}, temporal {result.temporal} "
                   f"({stylizer.backend}), {result.seconds:.1f} s, {result.fps:.2f} frames/s", err=True)

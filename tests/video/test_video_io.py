"""``styler video`` end to end on clips synthesized with PyAV: what is kept, formats, trimming, rotation, errors,
interruptions. The network is a tiny random model on eager torch; ``--strength 0`` passes frames through
unstylized where a test needs to read frame contents back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from video_helpers import HEIGHT, WIDTH, frame_index, numbered_frames

from styler.cli.video import video
from styler.video.pipeline import VideoOptions, default_output, stylize_video
from styler.video.source import VideoError, probe
from styler.video.synthetic import tone, write_clip


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(video, [*args, "--backend", "torch", "-q"])
    return result.exit_code, result.output


def _decoded(path: Path) -> list[np.ndarray]:
    if path.suffix == ".webp":
        with Image.open(path) as img:
            return [np.asarray(img.convert("RGB")) for _ in _seek_all(img)]
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _seek_all(img: Image.Image):
    for index in range(img.n_frames):
        img.seek(index)
        yield index


def _audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return sum(f.samples for f in container.decode(stream)) / stream.codec_context.sample_rate


def _no_leftovers(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_frames_rate_size_and_sound_are_kept(clip_with_sound, model_file, tmp_path):
    out = tmp_path / "out.mp4"
    code, text = _run(str(clip_with_sound), "-o", str(out), "-m", str(model_file))
    assert code == 0, text
    info = probe(out)
    assert (info.codec, info.width, info.height, info.rate, info.frames) == ("h264", WIDTH, HEIGHT, 12, 24)
    assert info.audio_codec == "aac"
    assert _audio_seconds(out) == pytest.approx(_audio_seconds(clip_with_sound), abs=0.03)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    _no_leftovers(tmp_path)


def test_gif_in_gif_out_keeps_every_frame(model_file, tmp_path):
    source = tmp_path / "anim.gif"
    frames = [Image.fromarray(f) for f in numbered_frames(7)]
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=80, loop=0)
    out = tmp_path / "out.gif"
    code, text = _run(str(source), "-o", str(out), "-m", str(model_file))
    assert code == 0, text
    with Image.open(out) as img:
        assert (img.n_frames, img.size) == (7, (WIDTH, HEIGHT))
        durations = [img.info["duration"] for _ in _seek_all(img)]
    assert durations == [80] * 7


def test_animated_webp_in_and_out(stylizer, tmp_path):
    source = tmp_path / "anim.webp"
    frames = [Image.fromarray(f) for f in numbered_frames(5)]
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
    for suffix in (".mp4", ".webp"):
        result = stylize_video(source, tmp_path / f"out{suffix}", stylizer,
                               _passthrough())
        assert result.frames == 5
        assert [frame_index(f) for f in _decoded(result.output)] == list(range(5))


def _passthrough(**options) -> VideoOptions:
    """Frames through unstylized (strength 0) and unblended, so their contents can be read back."""
    from styler.infer.options import StylizeOptions
    from styler.video.temporal import TemporalSettings

    return VideoOptions(stylize=StylizeOptions(strength=0.0), temporal=TemporalSettings.parse("off"), **options)


def test_start_and_duration_cut_frames_and_sound(clip_with_sound, stylizer, tmp_path):
    result = stylize_video(clip_with_sound, tmp_path / "cut.mp4", stylizer,
                           _passthrough(start=0.5, duration=1.0))
    assert result.frames == 12
    assert [frame_index(f) for f in _decoded(result.output)] == list(range(6, 18))
    assert _audio_seconds(result.output) == pytest.approx(1.0, abs=0.05)
    assert probe(result.output).duration == pytest.approx(1.0, abs=0.01)


def test_start_and_duration_through_the_command_line(clip_with_sound, model_file, tmp_path):
    out = tmp_path / "cut.mkv"
    code, text = _run(str(clip_with_sound), "-o", str(out), "-m", str(model_file), "--start", "0:01",
                      "--duration", "0.5", "--strength", "0", "--temporal", "off")
    assert code == 0, text
    assert [frame_index(f) for f in _decoded(out)] == list(range(12, 18))
    assert _run(str(clip_with_sound), "-o", str(tmp_path / "x.mp4"), "--start", "soon")[0] == 2
    code, text = _run(str(clip_with_sound), "-o", str(tmp_path / "x.mp4"), "--temporal", "magic")
    assert code == 2 and "unknown --temporal" in text


def test_rotation_metadata_is_applied_to_the_pixels(model_file, stylizer, tmp_path):
    source = tmp_path / "phone.mp4"
    write_clip(source, numbered_frames(4), 10, rotation=90)  # stored landscape, shown portrait
    assert probe(source).display_size == (HEIGHT, WIDTH)
    result = stylize_video(source, tmp_path / "upright.mp4", stylizer, _passthrough())
    first = _decoded(result.output)[0]
    assert first.shape[:2] == (WIDTH, HEIGHT)
    assert first[-6:, :6].mean() > 200  # a 90° counter-clockwise turn moves the top-left marker to bottom-left
    with av.open(str(result.output)) as container:
        assert next(container.decode(video=0)).rotation == 0


def test_odd_sizes_become_even_and_max_size_caps(model_file, stylizer, tmp_path):
    source = tmp_path / "odd.mkv"
    write_clip(source, [np.zeros((49, 65, 3), np.uint8)] * 3, 10, pix_fmt="yuv444p")
    assert stylize_video(source, tmp_path / "a.mp4", stylizer).size == (64, 48)
    assert stylize_video(source, tmp_path / "b.gif", stylizer).size == (65, 49)  # GIF has no parity constraint
    assert stylize_video(source, tmp_path / "c.mp4", stylizer, VideoOptions(max_size=32)).size == (32, 24)


def test_audio_is_reencoded_when_the_container_needs_it(clip_with_sound, stylizer, tmp_path):
    result = stylize_video(clip_with_sound, tmp_path / "out.webm", stylizer)
    assert result.audio == "re-encoded" and any("aac to libopus" in w for w in result.warnings)
    assert probe(result.output).audio_codec == "opus"
    assert _audio_seconds(result.output) == pytest.approx(2.0, abs=0.05)
    gif = stylize_video(clip_with_sound, tmp_path / "out.gif", stylizer)
    assert gif.audio == "dropped" and gif.frames == 24


def test_default_output_name(tmp_path):
    assert default_output(tmp_path / "holiday.MOV", "great_wave_in") == tmp_path / "holiday_great_wave_in.mov"
    assert default_output(tmp_path / "clip.avi", "m") == tmp_path / "clip_m.mp4"


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "notes.mp4").write_text("this is not a video\n" * 20)
    good = folder / "good.mp4"
    write_clip(good, numbered_frames(12), 12, audio=tone(1.0))
    (folder / "cut.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    mkv = folder / "good.mkv"
    noise = np.random.default_rng(0).integers(0, 256, size=(40, HEIGHT, WIDTH, 3)).astype(np.uint8)
    write_clip(mkv, list(noise), 10)  # frames of similar size: a cut at 40 % keeps some whole frames
    (folder / "cut.mkv").write_bytes(mkv.read_bytes()[: mkv.stat().st_size * 2 // 5])
    with av.open(str(folder / "zero.mkv"), "w") as container:  # a video stream and not a single frame
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        container.start_encoding()
    with av.open(str(folder / "sound.m4a"), "w") as container:
        from styler.video.synthetic import _write_audio

        stream = container.add_stream("aac", rate=48000)
        stream.layout = "stereo"
        _write_audio(container, stream, tone(0.5), 48000)
    Image.fromarray(numbered_frames(1)[0]).save(folder / "photo.png")
    return {p.stem if p.stem not in ("cut", "good") else p.name: p for p in folder.iterdir()}


@pytest.mark.parametrize("name, message", [
    ("notes", "not a video"),
    ("zero", "zero-frame"),
    ("cut.mp4", "truncated or corrupt"),
    ("cut.mkv", "truncated video"),
    ("sound", "audio only"),
    ("photo", "still image"),
])
def test_bad_inputs_exit_1_with_a_clear_message(bad_inputs, model_file, tmp_path, name, message):
    out = tmp_path / "out.mp4"
    code, text = _run(str(bad_inputs[name]), "-o", str(out), "-m", str(model_file))
    assert code == 1 and message in text and "Traceback" not in text, text
    assert not out.exists()
    _no_leftovers(tmp_path)


def test_unsupported_output_and_existing_output(clip_with_sound, model_file, tmp_path):
    code, text = _run(str(clip_with_sound), "-o", str(tmp_path / "out.avi"), "-m", str(model_file))
    assert code == 1 and "unsupported output format '.avi'" in text
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    code, text = _run(str(clip_with_sound), "-o", str(existing), "-m", str(model_file))
    assert code == 1 and "--force" in text and existing.read_bytes() == b"keep me"
    assert _run(str(clip_with_sound), "-o", str(clip_with_sound), "--force")[0] == 1  # never the input
    assert _run(str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4"))[0] == 1


def test_an_interrupted_run_leaves_no_output(clip_with_sound, stylizer, tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"the previous version")
    written = []

    def interrupt() -> None:
        written.append(1)
        if len(written) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip_with_sound, target, stylizer, VideoOptions(force=True), on_frame=interrupt)
    assert target.read_bytes() == b"the previous version"
    _no_leftovers(tmp_path)
    written.clear()
    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip_with_sound, tmp_path / "new.mp4", stylizer, on_frame=interrupt)
    assert not (tmp_path / "new.mp4").exists()
    _no_leftovers(tmp_path)


def test_a_decode_error_removes_the_temporary_file(bad_inputs, stylizer, tmp_path):
    with pytest.raises(VideoError, match="truncated video"):
        stylize_video(bad_inputs["cut.mkv"], tmp_path / "out.mp4", stylizer)
    assert not (tmp_path / "out.mp4").exists()
    _no_leftovers(tmp_path)


@pytest.mark.slow
def test_sigterm_exits_130_and_leaves_nothing(model_file, tmp_path):
    source = tmp_path / "long.mp4"
    write_clip(source, numbered_frames(30) * 8, 24, audio=tone(10.0))
    out = tmp_path / "out.mp4"
    code = ("import sys; from styler.cli.video import video; "
            "sys.argv = ['styler-video', *sys.argv[1:]]; video()")
    process = subprocess.Popen([sys.executable, "-c", code, str(source), "-o", str(out), "-m", str(model_file),
                                "--backend", "torch", "--threads", "1", "--batch-size", "1"],
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr
    assert not out.exists()
    _no_leftovers(tmp_path)
